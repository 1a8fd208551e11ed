"""WAL checkpoints on a thread of their own, so no writer (the window, the sync worker) waits for one.

In WAL mode every commit appends to the ``-wal`` file; a checkpoint copies those pages back into the
database and syncs it to disk. By default SQLite runs one inside whichever commit crosses 1,000 pages: a
triage click on the window's thread or a sync batch then waits tens of milliseconds for the disk (``make
bench``: a quarter of the ingest time). The SQLite documentation's remedy is to raise that threshold and
checkpoint from a separate thread; :class:`Checkpointer` is that thread. Its checkpoints are PASSIVE: they
never block a reader or a writer, and a writer can go on appending while one runs.

Every connection keeps :data:`BACKSTOP_PAGES` as its own automatic threshold, so the WAL stays bounded even
where no Checkpointer runs (command-line tools) or if it falls behind.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

#: Automatic checkpoint threshold of every connection (pages of 4 KiB): a backstop, not the normal path.
BACKSTOP_PAGES = 16_384
#: The WAL file is cut back to this size after a checkpoint that emptied it.
WAL_SIZE_LIMIT = 64 * 1024 * 1024


class Checkpointer:
    """A daemon thread with its own connection that checkpoints the WAL soon after other connections commit.

    Call :meth:`start` once the database exists and :meth:`close` before the database's last connection closes
    (it runs a final checkpoint). :meth:`nudge` asks for a checkpoint now (after a large batch).
    """

    def __init__(self, path: Path, *, interval: float = 0.25) -> None:
        """Args:
        path: the database file (never ``:memory:``).
        interval: seconds between looks for new commits.
        """
        self._path = path
        self._interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._passes = 0
        self._attempts = 0
        self._done = threading.Condition()

    @property
    def passes(self) -> int:
        """Checkpoints run so far (for tests and diagnostics)."""
        return self._passes

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="care-checkpoint", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        """Checkpoint as soon as possible instead of at the next interval."""
        self._wake.set()

    @property
    def attempts(self) -> int:
        """Looks at the database so far, failed ones included (for tests and diagnostics)."""
        return self._attempts

    def wait_for_attempt(self, after: int, timeout: float) -> bool:
        """Block until more than ``after`` looks (successful or not) have run; False on timeout."""
        with self._done:
            return self._done.wait_for(lambda: self._attempts > after, timeout)

    def wait_for_pass(self, after: int, timeout: float) -> bool:
        """Block until more than ``after`` checkpoints have run; False on timeout."""
        with self._done:
            return self._done.wait_for(lambda: self._passes > after, timeout)

    def close(self) -> None:
        """Stop the thread after a last checkpoint (idempotent)."""
        if self._thread is None:
            return
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self._thread = None

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(str(self._path), isolation_level=None, timeout=5.0, check_same_thread=True)
        except sqlite3.Error as exc:  # the writers' backstop keeps checkpointing
            log.warning("WAL checkpoint thread could not open the database: %s", exc)
            return
        seen: int | None = None
        failing: str | None = None  # why the last look failed; a failing streak is logged once, not every pass
        try:
            while True:
                stopping = self._stop.is_set()
                try:
                    # data_version changes when another connection commits: nothing new, nothing to do.
                    version = int(conn.execute("PRAGMA data_version").fetchone()[0])
                    if version != seen or stopping:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                        seen = version
                        with self._done:
                            self._passes += 1
                except sqlite3.Error as exc:  # busy, full or gone: try again next time; writers have the backstop
                    reason = _reason(exc)
                    if reason != failing:
                        busy = getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
                        log.log(
                            logging.INFO if busy else logging.WARNING,
                            "WAL checkpoints paused: %s. Saved data is safe; checkpoints retry quietly.",
                            reason,
                        )
                        failing = reason
                else:
                    if failing is not None:
                        log.info("WAL checkpoints run again.")
                        failing = None
                with self._done:
                    self._attempts += 1
                    self._done.notify_all()
                if stopping:
                    return
                self._wake.wait(self._interval)
                self._wake.clear()
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.close()


def _reason(exc: sqlite3.Error) -> str:
    """A checkpoint failure in words: a full disk (or a file size limit) is said plainly."""
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return f"the disk is full ({exc})"
    return str(exc) or type(exc).__name__
