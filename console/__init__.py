"""The Care Console domain, Qt-free, grouped by feature (docs/ARCHITECTURE.md).

Features, from the top: ``cli`` → ``runtime`` → ``sandbox`` → ``reports`` → ``replies`` | ``surveys`` |
``accounts`` | ``shifts`` → ``sync`` → ``sla`` → ``channels``. A feature imports only features below it, and
siblings joined by ``|`` not each other (import-linter's "console features" contract). Shared by all:
``model`` (value types), ``ports`` (Clock, SecretStore), ``wording``, ``queue``, ``triage``, ``preferences``,
``keymap``, ``diagnostics``.
"""
