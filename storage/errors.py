"""Storage errors: every sqlite3 or keyring failure crosses the boundary as one of these.

storage/driver.py is the one place that turns driver errors into them; ``message`` is that place's sentence
("Could not queue the reply: database or disk is full") when the error happened while the app was running.

StorageError
 ├── DatabaseCorrupt      the file is not a readable Care Console database
 ├── DatabaseTooNew       written by a newer app; refused, never modified
 ├── DatabaseLocked       another instance holds the data directory
 ├── DatabaseUnwritable   the disk is full, the folder read-only, or the file busy: the data is fine
 ├── SecretStoreUnavailable   no usable OS keyring backend
 ├── TeamUnavailable      the team database cannot be reached now (network, server down, pool exhausted)
 ├── TeamSchemaTooNew     the team database was set up by a newer Care Console; refused, never modified
 └── TeamRefused          the team database refused the operation to this member (grants, row-level security)
"""

from __future__ import annotations

from pathlib import Path


class StorageError(Exception):
    """A storage operation failed; the message is meant for the user."""


class DatabaseCorrupt(StorageError):
    def __init__(self, path: Path, reason: str, *, message: str | None = None) -> None:
        super().__init__(
            message
            or f"The database file {path} cannot be read ({reason}). It was left untouched; "
            "move it aside to start with a fresh database."
        )
        self.path = path
        self.reason = reason


class DatabaseTooNew(StorageError):
    def __init__(self, path: Path, found: int, supported: int) -> None:
        super().__init__(
            f"The database {path} was written by a newer Care Console (schema {found}; this version "
            f"knows up to {supported}). It was not modified: update the app to open it."
        )
        self.path = path
        self.found = found
        self.supported = supported


class DatabaseLocked(StorageError):
    def __init__(self, data_dir: Path, pid: int | None) -> None:
        who = f" (process {pid})" if pid else ""
        super().__init__(f"Another Care Console instance{who} is already running on {data_dir}.")
        self.data_dir = data_dir
        self.pid = pid


class DatabaseUnwritable(StorageError):
    """The database is intact but cannot be written now (disk full, read-only folder, I/O error, busy)."""

    def __init__(self, path: Path, reason: str, *, message: str | None = None) -> None:
        super().__init__(
            message
            or f"Cannot write to the database {path}: {reason}. Nothing stored so far is lost; "
            "fix that and start Care Console again."
        )
        self.path = path
        self.reason = reason


class SecretStoreUnavailable(StorageError):
    """No OS keyring backend is usable; tokens can only be kept for this session."""


class TeamUnavailable(StorageError):
    """The team database cannot be reached now; the local copy keeps working and changes wait to be pushed.

    The message never holds the password: it is made from the server's address and the driver's reason.
    """

    def __init__(self, reason: str, *, message: str | None = None) -> None:
        super().__init__(message or f"The team database cannot be reached: {reason}")
        self.reason = reason


class TeamSchemaTooNew(StorageError):
    def __init__(self, found: int, supported: int) -> None:
        super().__init__(
            f"The team database was set up by a newer Care Console (schema {found}, this app knows {supported}): "
            "update the app."
        )
        self.found = found
        self.supported = supported


class TeamRefused(StorageError):
    """The team database refused the operation for this member (a grant or a row-level security policy).

    Enforced by PostgreSQL (issue #23): an agent may not rewrite history, write as someone else, or take a
    supervisor's action; the window hides those actions too, but the server is what decides.
    """
