"""Net Easy surveys: asking, reading the answer, scoring.

Owns the fatigue guard and sending (``service``), reading an answer out of free text (``answers``) and the
arithmetic: score, adjusted-Wald interval, two-sample test (``net_easy``).

May import: ``console.model``, ``console.ports`` and the storage repositories. Independent of replies,
accounts and shifts (import-linter keeps it so).
"""
