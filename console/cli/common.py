"""What the commands and the window share when they start: exit codes, the data folder, the secret store and the
app's runtime opened from the command line's options."""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import platformdirs

from console.diagnostics import Diagnostics, RedactingSecretStore
from console.ports import Clock, LazySecretStore, MemorySecretStore, SecretStore
from console.runtime import Runtime, SandboxOptions, open_runtime

log = logging.getLogger("care_console")

EXIT_OK, EXIT_LOCKED, EXIT_DATABASE = 0, 1, 2
#: Said in the Accounts dialog when tokens cannot outlive the session.
NO_KEYRING_WARNING = (
    "No OS keyring is available on this machine: credentials are kept for this session only and must "
    "be entered again after a restart. Nothing is written to disk in plain text."
)


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("care-console", appauthor=False))


def data_dir_of(args: argparse.Namespace) -> Path:
    """``--data-dir``, or the platform data folder."""
    return args.data_dir or default_data_dir()


def make_secret_store() -> tuple[SecretStore, str | None]:
    """The OS keyring, or a session-only store with a warning when no backend is usable."""
    from storage.secrets import KeyringSecretStore  # here: the GUI opens the keyring after its first paint

    store = KeyringSecretStore()
    if store.usable():
        return store, None
    return MemorySecretStore(), "No OS keyring is available: account tokens are kept for this session only."


def _open_secret_store() -> SecretStore:
    secrets, warning = make_secret_store()
    if warning:
        # Said again, as a visible message, where it matters: when an account with a token is added.
        log.info(warning)
    return secrets


def secret_backend(secrets: SecretStore) -> SecretStore:
    """The store behind the redacting and lazy wrappers (opened now if it was not yet)."""
    if isinstance(secrets, RedactingSecretStore):
        secrets = secrets.inner
    return secrets.store if isinstance(secrets, LazySecretStore) else secrets


def keyring_warning(secrets: SecretStore) -> str | None:
    """What the Accounts dialog says when the store behind ``secrets`` is not the OS keyring (it opens it)."""
    from storage.secrets import KeyringSecretStore  # here, as in make_secret_store

    return None if isinstance(secret_backend(secrets), KeyringSecretStore) else NO_KEYRING_WARNING


def redacting(args: argparse.Namespace, secrets: SecretStore) -> SecretStore:
    """Every token the app reads or saves is registered with the log redactor (issue 12)."""
    diagnostics = getattr(args, "diagnostics", None)
    return RedactingSecretStore(secrets, diagnostics.redactor) if isinstance(diagnostics, Diagnostics) else secrets


def open_app_runtime(
    args: argparse.Namespace, clock: Clock, *, demo: bool, sandbox: SandboxOptions | None = None
) -> Runtime:
    """The app's runtime for the command line's options: the data folder (a fresh temporary one for a demo
    without ``--data-dir``), the keyring opened on first use, the sandbox when asked or when no account exists.

    Raises:
        DatabaseLocked, DatabaseCorrupt, DatabaseTooNew, StorageError: as ``open_runtime``.
    """
    data_dir: Path = args.data_dir or (
        Path(tempfile.mkdtemp(prefix="care-console-demo-")) if demo else default_data_dir()
    )
    # The keyring is opened on first use, or by the window once the queue is painted (it takes ~100 ms).
    secrets = redacting(args, LazySecretStore(_open_secret_store))
    options = sandbox or (SandboxOptions(rate_per_minute=20.0, backlog=14) if demo else SandboxOptions())
    poll = 2.0 if demo else None
    runtime = open_runtime(
        data_dir, clock=clock, secrets=secrets, sandbox=options, force_sandbox=args.sandbox or demo, poll_seconds=poll
    )
    if runtime.on_sandbox and poll is None:
        runtime.poller.interval = 5.0  # the sandbox is local: poll it often
    return runtime
