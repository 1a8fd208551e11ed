"""Logs and crash reports keep no secrets; doctor explains what to do."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

from console.cli.doctor_checks import check
from console.diagnostics import LOG_FILENAME, Diagnostics, SecretRedactor
from storage.accounts import AccountRepo
from storage.db import DB_FILENAME, open_database
from storage.rows import Health

TOKEN = "tok_9f8e7d6c5b4a3210ZZ"


@pytest.fixture
def diagnostics(tmp_path: Path) -> Iterator[Diagnostics]:
    diag = Diagnostics(tmp_path / "logs", console_level=logging.CRITICAL)
    diag.install()
    yield diag
    diag.uninstall()


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {TOKEN}",
        f"GET https://x.example/api?access_token={TOKEN}&limit=40",
        f'{{"refresh_token": "{TOKEN}"}}',
        f"password={TOKEN}",
        f"login failed for bearer {TOKEN}",
    ],
)
def test_redactor_removes_credential_shapes(text: str) -> None:
    redacted = SecretRedactor().redact(text)
    assert TOKEN not in redacted
    assert "[redacted]" in redacted


def test_redactor_removes_registered_values_anywhere() -> None:
    redactor = SecretRedactor()
    redactor.add(TOKEN)
    assert SecretRedactor().redact(f"odd place {TOKEN}") == f"odd place {TOKEN}"  # unknown, no pattern
    assert redactor.redact(f"odd place {TOKEN}") == "odd place [redacted]"


def test_log_file_rotates_privately_and_holds_no_token(diagnostics: Diagnostics, tmp_path: Path) -> None:
    diagnostics.redactor.add(TOKEN)
    logging.getLogger("care_console.test").warning("connecting with %s", TOKEN)
    try:
        raise RuntimeError(f"server said: Bearer {TOKEN}")
    except RuntimeError:
        logging.getLogger("care_console.test").exception("sync failed")
    for handler in diagnostics.handlers:
        handler.flush()
    log = (tmp_path / "logs" / LOG_FILENAME).read_text()
    assert "connecting with [redacted]" in log
    assert "sync failed" in log
    assert "RuntimeError" in log
    assert TOKEN not in log
    if sys.platform != "win32":
        assert (tmp_path / "logs" / LOG_FILENAME).stat().st_mode & 0o077 == 0


def test_crash_report_has_traceback_versions_and_recent_lines_but_no_secret(
    diagnostics: Diagnostics, tmp_path: Path
) -> None:
    diagnostics.redactor.add(TOKEN)
    logging.getLogger("care_console.test").info("polled account 1")
    try:
        raise ValueError(f"boom with {TOKEN}")
    except ValueError as exc:
        path = diagnostics.write_crash_report(type(exc), exc, exc.__traceback__, versions={"Qt": "6.11.3"}, now=0)
    assert path is not None
    assert path.name == "crash-19700101-000000.txt"
    text = path.read_text()
    assert "ValueError: boom with [redacted]" in text
    assert "Qt: 6.11.3" in text
    assert "polled account 1" in text
    assert TOKEN not in text


def test_unwritable_log_folder_is_reported_not_fatal(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    diag = Diagnostics(blocker / "logs")
    assert diag.file_error is not None
    assert "Cannot write logs" in diag.file_error


def test_doctor_reports_keyring_folder_database_and_account_advice(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    db = open_database(data / DB_FILENAME)
    accounts = AccountRepo(db)
    account = accounts.add(kind="mastodon", handle="care", base_url="https://m.example", now=0)
    accounts.set_health(account.id, Health.AUTH_EXPIRED, "token revoked")
    db.conn.close()
    findings = {f.area: f for f in check(data, keyring_backend=None, qt_version="Qt 6.11.3")}
    assert not findings["keyring"].ok
    assert "Secret Service" in findings["keyring"].advice
    assert findings["database"].ok
    assert "integrity ok" in findings["database"].message
    assert not findings[f"account {account.id}"].ok
    assert "reconnect" in findings[f"account {account.id}"].line()
    assert findings["data folder"].ok


def test_doctor_flags_an_unreadable_database_with_advice(tmp_path: Path) -> None:
    (tmp_path / DB_FILENAME).write_bytes(b"not a database" * 100)
    findings = {f.area: f for f in check(tmp_path, keyring_backend="x.Keyring", qt_version="Qt")}
    assert not findings["database"].ok
    assert "move aside" in findings["database"].advice


def _crash(value: int) -> tuple[type[BaseException], BaseException, TracebackType | None]:
    try:
        raise ValueError(f"zip() argument 2 is longer than argument 1 ({value})")
    except ValueError as exc:
        return type(exc), exc, exc.__traceback__


def _other_crash() -> tuple[type[BaseException], BaseException, TracebackType | None]:
    try:
        raise KeyError("other")
    except KeyError as exc:
        return type(exc), exc, exc.__traceback__


def _crash_reports(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "logs").glob("crash-*.txt"))


def test_crash_report_same_error_repeating_writes_one_report_a_minute(diagnostics: Diagnostics, tmp_path: Path) -> None:
    """Issue 19 §1: a timer failing every second wrote a new crash report every second."""
    first = diagnostics.write_crash_report(*_crash(0), now=1000)
    again = [diagnostics.write_crash_report(*_crash(i), now=1000 + i) for i in range(1, 60)]
    assert first is not None
    assert again == [first] * 59  # the bar still points at the report that describes it
    assert _crash_reports(tmp_path) == ["crash-19700101-001640.txt"]
    later = diagnostics.write_crash_report(*_crash(60), now=1060)
    assert later is not None
    assert later != first
    assert _crash_reports(tmp_path) == ["crash-19700101-001640.txt", "crash-19700101-001740.txt"]


def test_crash_report_different_error_is_not_held_back(diagnostics: Diagnostics, tmp_path: Path) -> None:
    diagnostics.write_crash_report(*_crash(0), now=1000)
    other = diagnostics.write_crash_report(*_other_crash(), now=1001)
    assert other is not None
    assert "KeyError" in other.read_text()
    assert len(_crash_reports(tmp_path)) == 2


@pytest.mark.parametrize(
    "name", ["fontTools.subset", "fontTools.ttLib.ttFont", "fpdf.output", "matplotlib.font_manager"]
)
def test_third_party_chatter_stays_out_of_the_log(diagnostics: Diagnostics, tmp_path: Path, name: str) -> None:
    """Issue 19 §16: the log was 150 of 152 lines of font-subsetting noise."""
    logging.getLogger(name).info("glyf subsetted")
    logging.getLogger(name).warning("font has no glyph for U+1F600")
    for handler in diagnostics.handlers:
        handler.flush()
    log = (tmp_path / "logs" / LOG_FILENAME).read_text()
    assert "glyf subsetted" not in log
    assert "font has no glyph for U+1F600" in log
