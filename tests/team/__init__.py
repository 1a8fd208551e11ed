"""The team soak (issue 22, "Proof"): ten and more agent processes on one queue, under faults, then the checks."""
