"""Run as a child process: the app's logging and the checkpoint thread on a disk that has just filled up.

``python -m tests.reliability.full_disk_worker FOLDER MODE``. MODE ``fill``: FOLDER is on a small file system
and the worker fills it (a real ENOSPC). MODE ``limit``: the file size limit (``RLIMIT_FSIZE``, ``SIGXFSZ``
ignored) makes every write past the files' current size fail, for this process only (no root needed).
Prints ``done`` when it finished normally.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import signal
import sys
from pathlib import Path

from console.diagnostics import LOG_FILENAME, Diagnostics
from storage.checkpoint import Checkpointer
from storage.db import DB_FILENAME, open_database

log = logging.getLogger("care.full_disk_worker")


def _fill(folder: Path) -> None:
    with (folder / "filler.bin").open("ab", buffering=0) as filler:
        for size in (1 << 16, 1 << 10, 1):
            with contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0" * size)


def main(folder: Path, mode: str) -> None:
    logs = folder / "logs"
    logs.mkdir(parents=True)
    path = folder / DB_FILENAME
    db = open_database(path)
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.execute("BEGIN")
    db.conn.executemany("INSERT INTO settings (key, value) VALUES (?, ?)", [(f"k{i}", "x" * 200) for i in range(3000)])
    db.conn.execute("COMMIT")  # ~180 pages wait in the WAL for the checkpoint to copy them into the database
    limit = path.stat().st_size
    (logs / LOG_FILENAME).write_text("x" * limit, encoding="utf-8")  # the log file is as full as the disk
    diagnostics = Diagnostics(logs, level=logging.INFO, console_level=logging.WARNING)
    diagnostics.install()
    if mode == "fill":
        _fill(folder)
    else:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    checkpointer = Checkpointer(path, interval=60)
    checkpointer.start()
    for attempt in range(5):
        checkpointer.nudge()
        if not checkpointer.wait_for_attempt(attempt, timeout=30):
            raise SystemExit("the checkpoint thread stopped looking")
        log.info("still working (%d)", attempt)
    checkpointer.close()
    db.conn.close()
    diagnostics.uninstall()
    print("done", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
