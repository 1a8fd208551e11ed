"""The command-line commands: one module per command group (sync, accounts, outbox, export, review, doctor,
sandbox), each declaring its subcommand (``add_parser``) and running it (``run``); ``common`` opens what they
share. ``main.py`` parses the command line and calls them. Qt-free, like all of ``console``."""
