"""Atomic file writes: a temporary file next to the target, fsync, then rename; never a partial file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


class ExportError(Exception):
    """An export or import that failed; the message names the file and the problem."""


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Write ``path`` through ``write(stream)`` so that it either appears complete or not at all.

    The data goes to a hidden temporary file in the same folder, is flushed to disk and then renamed over
    ``path``. If ``write`` raises, the temporary file is removed and an existing ``path`` is left untouched.

    Raises:
        ExportError: the folder is missing or not writable, or ``write`` failed (the cause is chained).
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"Cannot write {target}: the folder {folder} does not exist.")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise ExportError(f"Cannot write {target}: {exc.strerror or exc}.") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, 0o600)  # summaries name customers: owner-only, like the database (issue 12)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, ExportError | KeyboardInterrupt | SystemExit):
            raise
        if isinstance(exc, OSError):
            raise ExportError(f"Cannot write {target}: {exc.strerror or exc}.") from exc
        raise
    return target
