"""``care-console doctor``: check the keyring, the database and the accounts' health, and say what to do."""

from __future__ import annotations

import argparse

from console.cli.common import EXIT_OK, data_dir_of


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``doctor`` to the command line."""
    sub.add_parser("doctor", help="check the keyring, the database and the accounts' health")


def run(args: argparse.Namespace, *, qt_version: str | None) -> int:
    """Print every check with what to do; exit 0 when all is well, 1 otherwise.

    Args:
        args: The parsed command line.
        qt_version: The Qt the window would run on (``"Qt 6.x"``), or None when Qt cannot be imported.
    """
    from console.cli.doctor_checks import check
    from storage.secrets import KeyringSecretStore  # here, as in make_secret_store

    store = KeyringSecretStore()
    backend = store.backend_name() if store.usable() else None
    findings = check(data_dir_of(args), keyring_backend=backend, qt_version=qt_version)
    for finding in findings:
        print(finding.line())
    return EXIT_OK if all(f.ok for f in findings) else 1
