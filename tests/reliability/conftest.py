"""Reliability suite fixtures: a size-limited tmpfs, soak rounds, and a tally printed at the end of the run."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

#: ``make soak`` sets SOAK_ROUNDS; ``make test`` runs the default (small) number of rounds.
SOAK_ROUNDS = int(os.environ.get("SOAK_ROUNDS", "0") or 0)

#: What the suite survived, printed under "reliability" after the run (rounds, faults, crashes, inputs, losses).
TALLY: Counter[str] = Counter()


def rounds(default: int, *, per_soak_round: int = 1) -> int:
    """The number of rounds for a randomized test: the default, or more under ``make soak``."""
    return max(default, SOAK_ROUNDS * per_soak_round)


def examples(default: int) -> int:
    """Hypothesis examples per property: the default, or ten per soak round."""
    return max(default, SOAK_ROUNDS * 10)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY:
        return
    terminalreporter.section("reliability")
    for key in sorted(TALLY):
        terminalreporter.write_line(f"{key}: {TALLY[key]}")


class Tmpfs:
    """A mounted tmpfs of a fixed size: a real "disk full" and a real read-only file system."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._filler = path / "filler.bin"

    def fill(self) -> None:
        """Write until the file system says ENOSPC."""
        fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 16, 1 << 10, 1):  # then byte-sized remnants: not even one page is left
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, b"\0" * size)
        finally:
            os.close(fd)

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)

    def remount(self, mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.path)], check=True, capture_output=True)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Tmpfs]:
    """A 16 MB tmpfs (root only: skipped where mounting is not allowed)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a size-limited tmpfs (disk full and read-only file system)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mount)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield Tmpfs(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)
