"""Single-instance lock per data directory: an exclusive fcntl/msvcrt lock on a file held for the run."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from types import TracebackType

from storage.errors import DatabaseLocked, StorageError

LOCK_FILENAME = "care-console.lock"


class InstanceLock:
    """Held while the app runs; the OS drops it when the process dies, so a crash never leaves it stale."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILENAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock.

        Raises:
            DatabaseLocked: another process holds it.
            StorageError: the lock file cannot be created.
        """
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StorageError(f"Cannot create the lock file {self.path}: {exc}") from exc
        try:
            _lock(fd)
        except OSError as exc:
            pid = _read_pid(fd)
            os.close(fd)
            raise DatabaseLocked(self.data_dir, pid) from exc
        # The pid is only a hint for the "already running" message: a full disk must not stop the app here
        # (the database reports it clearly when it cannot write).
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        raw = os.pread(fd, 32, 0).decode().strip()
        return int(raw) if raw else None
    except (OSError, ValueError):
        return None


if sys.platform == "win32":  # pragma: no cover - exercised only on Windows
    import msvcrt

    def _lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
