"""Channel connectors: one module per channel, pure parse functions, typed errors."""
