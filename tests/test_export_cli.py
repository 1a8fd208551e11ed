"""`care-console export` and `care-console review` as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

import main
from console.reports.export.codec import load_summary
from storage.db import DB_FILENAME, open_database
from tests.console.shift_script import scripted_shift
from tests.fakes.clock import FakeClock


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    db = open_database(folder / DB_FILENAME)
    try:
        scripted_shift(db, FakeClock())
    finally:
        db.conn.close()
    return folder


def test_export_last_shift_in_every_format(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for fmt in ("json", "csv", "xlsx", "html", "pdf"):
        out = tmp_path / f"shift.{fmt}"
        assert main.main(["--data-dir", str(data_dir), "export", "--shift", "last", "-o", str(out)]) == 0
        assert out.stat().st_size > 0
    assert load_summary(tmp_path / "shift.json").counts.received == 5
    assert "exported pdf to" in capsys.readouterr().out


def test_export_options_and_errors(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "redacted.data"
    args = ["--data-dir", str(data_dir), "export", "--shift", "1", "--format", "json", "--redact", "-o", str(out)]
    assert main.main(args) == 0
    assert load_summary(out).redacted
    assert main.main(["--data-dir", str(data_dir), "export", "--shift", "9", "-o", str(tmp_path / "x.json")]) == 1
    assert "There is no shift 9" in capsys.readouterr().err
    assert main.main(["--data-dir", str(data_dir), "export", "--shift", "one", "-o", str(tmp_path / "x.json")]) == 2
    assert "--shift takes a shift number or 'last'" in capsys.readouterr().err
    assert main.main(["--data-dir", str(data_dir), "export", "-o", str(tmp_path / "x.doc")]) == 2
    assert "Unknown export format 'doc'" in capsys.readouterr().err
    assert main.main(["--data-dir", str(tmp_path / "empty"), "export", "-o", str(tmp_path / "x.json")]) == 2
    assert "There is no database" in capsys.readouterr().err


def test_review_merges_names_broken_files_and_exports(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = tmp_path / "a.json"
    assert main.main(["--data-dir", str(data_dir), "export", "-o", str(summary)]) == 0
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    report = tmp_path / "review.pdf"
    capsys.readouterr()
    assert main.main(["review", str(summary), str(broken), str(summary), "-o", str(report)]) == 0
    out, err = capsys.readouterr()
    assert f"not loaded: {broken}" in err and "skipped:" in err
    assert "Ana Agent" in out and "breaches: 3 · open hand-overs: 3" in out  # F (inherited), B, E
    assert report.read_bytes().startswith(b"%PDF-")
    assert main.main(["review", str(broken)]) == 1


def test_headless_demo_writes_a_shift_summary(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    shot = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [sys.executable, "-m", "main", "--data-dir", str(tmp_path / "data"), "--demo", "--demo-seconds", "3",
         "--screenshot", str(shot)],
        capture_output=True, text=True, timeout=90, env=env, cwd=Path(main.__file__).parent, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = load_summary(tmp_path / "shot-summary.json")
    assert summary.shift.ended_at is not None and summary.counts.still_open > 0  # the backlog, handed over
    assert (tmp_path / "shot-summary.pdf").read_bytes().startswith(b"%PDF-")
    assert "shift summary saved to" in proc.stdout
