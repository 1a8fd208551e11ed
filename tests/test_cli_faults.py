"""`care-console sync --once` and `sandbox` with fault switches: failures are reported in plain words."""

from __future__ import annotations

from pathlib import Path

import pytest

import main


def test_sync_once_reports_a_rate_limit_with_its_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main.main(["--data-dir", str(tmp_path), "sync", "--once", "--faults", "retry_after:retry_after=90"])
    assert code == 1
    err = capsys.readouterr().err
    assert "rate limited:" in err and "retry in 90 s" in err and "(until " in err and "UTC)" in err


def test_sync_once_reports_an_expired_sign_in_and_doctor_shows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.main(["--data-dir", str(tmp_path), "sync", "--once", "--faults", "revoked"]) == 1
    err = capsys.readouterr().err
    assert "sign-in expired:" in err and "Sign in again" in err and "queued replies wait" in err
    assert main.main(["--data-dir", str(tmp_path), "doctor"]) == 1
    assert "auth_expired (" in capsys.readouterr().out


def test_sync_once_reports_a_server_error_as_retrying(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["--data-dir", str(tmp_path), "sync", "--once", "--faults", "html_error"]) == 1
    err = capsys.readouterr().err
    assert "retrying:" in err and "502" in err and "next attempt at" in err


def test_sync_once_reports_quarantined_items(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["--data-dir", str(tmp_path), "sync", "--once", "--faults", "malformed_item"]) == 0
    assert "stored 11" in (out := capsys.readouterr().out) and "1 malformed item quarantined" in out


@pytest.mark.parametrize("command", [["sync", "--once"], ["sandbox"]])
def test_a_bad_fault_spec_is_a_clear_error(tmp_path: Path, command: list[str]) -> None:
    with pytest.raises(SystemExit, match="--faults: unknown fault 'teapot'"):
        main.main(["--data-dir", str(tmp_path), *command, "--faults", "teapot"])
