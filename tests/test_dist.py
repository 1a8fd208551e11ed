"""The packaged app (``make dist-test``): the built bundle runs the sandbox demo offscreen and exits cleanly."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

BUNDLE = os.environ.get("CARE_CONSOLE_DIST")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not BUNDLE, reason="needs a built bundle: run `make dist-test`"),
]


def test_bundle_runs_the_demo_syncs_the_sandbox_and_exits_cleanly(tmp_path: Path) -> None:
    assert BUNDLE is not None
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [BUNDLE, "--data-dir", str(tmp_path / "data"), "--demo", "--demo-seconds", "5", "--screenshot", str(shot)],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "demo: done:" in proc.stdout
    synced = [line for line in proc.stdout.splitlines() if "mentions synced" in line]
    assert synced
    assert "mentions synced 0 " not in synced[-1]
    assert shot.read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "data" / "care-console.sqlite3").exists()
