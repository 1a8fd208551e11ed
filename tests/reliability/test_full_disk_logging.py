"""A full disk under the checkpoint thread and the log file: one clear line each on stderr, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.conftest import TALLY, Tmpfs

ROOT = Path(__file__).resolve().parents[2]


def _run_worker(folder: Path, mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tests.reliability.full_disk_worker", str(folder), mode],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "done"
    return done.stderr


def _assert_quiet_and_clear(stderr: str) -> None:
    assert "Logging error" not in stderr and "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    paused = [line for line in lines if "WAL checkpoints paused" in line]
    unsaved = [line for line in lines if "log lines are not being saved" in line]
    assert len(paused) == 1, lines  # five failed checkpoints, said once
    assert len(unsaved) == 1 and "free some disk space" in unsaved[0], lines
    TALLY["full-disk log and checkpoint failures said once, no traceback"] += 1


def test_full_disk_checkpoint_and_log_file_say_so_once(tmpfs: Tmpfs) -> None:
    stderr = _run_worker(tmpfs.path / "data", "fill")
    _assert_quiet_and_clear(stderr)
    assert "disk is full" in stderr or "No space left" in stderr


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ as on Linux")
def test_file_size_limit_checkpoint_and_log_file_say_so_once(tmp_path: Path) -> None:
    _assert_quiet_and_clear(_run_worker(tmp_path / "data", "limit"))
