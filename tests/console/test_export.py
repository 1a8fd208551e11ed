"""Exports: JSON round trip and rejection of bad files, CSV/XLSX row per item, redaction, no token, atomicity."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import openpyxl
import pytest
import sqlite_utils

from console.ports import MemorySecretStore
from console.reports.export import codec
from console.reports.export.atomic import ExportError, write_atomic
from console.reports.export.codec import InvalidSummary, load_summary, write_json
from console.reports.export.service import ExportService, Format, format_for, write_summary
from console.reports.export.tables import COLUMNS
from console.reports.summary import SCHEMA_VERSION, ShiftSummary, SummaryBuilder
from storage.settings import SettingsRepo
from storage.shifts import ShiftRepo
from tests.console.shift_script import ScriptedShift, at, big_shift, scripted_shift
from tests.fakes.clock import FakeClock

TOKEN = "tok-SUPER-secret-9f8e7d6c"


@pytest.fixture
def scripted(db: sqlite_utils.Database, clock: FakeClock) -> ScriptedShift:
    return scripted_shift(db, clock)


@pytest.fixture
def summary(scripted: ScriptedShift, clock: FakeClock) -> ShiftSummary:
    return SummaryBuilder(scripted.repo, clock).build(scripted.shift)


# ---------------------------------------------------------------------------------------------------- JSON
def test_json_round_trip_is_exact(summary: ShiftSummary, tmp_path: Path) -> None:
    path = write_json(summary, tmp_path / "shift.json")
    assert load_summary(path) == summary
    data = json.loads(path.read_text(encoding="utf-8"))
    assert (data["schema"], data["version"]) == ("care-console/shift-summary", SCHEMA_VERSION)


def _broken(summary: ShiftSummary, edit: Callable[[dict[str, Any]], object]) -> bytes:
    data = codec.to_dict(summary)
    edit(data)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("truncated", lambda s: codec.dumps(s)[:-40], "not valid JSON (the file looks truncated)"),
        ("empty", lambda s: b"", "the file is empty"),
        ("binary", lambda s: b"\xff\xfe\x00garbage", "not a text (UTF-8) file"),
        ("array", lambda s: b"[1, 2]", "expected a JSON object"),
        ("deep", lambda s: b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ("other", lambda s: b'{"schema": "something/else", "version": 1}', "is not a Care Console shift summary"),
        ("newer", lambda s: _broken(s, lambda d: d.update(version=99)), "written by a newer Care Console"),
        ("unversioned", lambda s: _broken(s, lambda d: d.pop("version")), "no valid summary version"),
        ("missing", lambda s: _broken(s, lambda d: d["counts"].pop("received")),
         "the field 'counts.received' is missing"),
        ("wrong type", lambda s: _broken(s, lambda d: d["counts"].update(received="5")),
         "counts.received: expected a whole number, found text '5'"),
        ("wrong nested type", lambda s: _broken(s, lambda d: d["breaches"][1].update(met_at=[])),
         "breaches[1].met_at: expected a whole number, found a list"),
        ("bool for number", lambda s: _broken(s, lambda d: d["net_easy"].update(n=True)),
         "net_easy.n: expected a whole number, found true"),
    ],
)  # fmt: skip
def test_bad_files_are_rejected_with_the_file_and_the_problem(
    summary: ShiftSummary, tmp_path: Path, name: str, make: Callable[[ShiftSummary], bytes], message: str
) -> None:
    path = tmp_path / f"{name.replace(' ', '-')}.json"
    path.write_bytes(make(summary))
    with pytest.raises(InvalidSummary) as caught:
        load_summary(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_huge_file_is_refused_unread(summary: ShiftSummary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_json(summary, tmp_path / "big.json")
    monkeypatch.setattr(codec, "MAX_BYTES", 1000)
    with pytest.raises(InvalidSummary, match="far larger than any shift summary"):
        load_summary(path)


def test_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(InvalidSummary, match="cannot be read"):
        load_summary(tmp_path / "nope.json")


# ---------------------------------------------------------------------------------------------------- tables
@pytest.mark.slow
def test_csv_and_xlsx_have_one_row_per_item_without_a_cap(
    db: sqlite_utils.Database, clock: FakeClock, tmp_path: Path
) -> None:
    big = big_shift(db, clock, 10_000)
    summary = SummaryBuilder(big.repo, clock).build(big.shift)
    assert len(summary.items) == 10_000
    csv_path = write_summary(summary, Format.CSV, tmp_path / "items.csv", tz=UTC)
    with csv_path.open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == list(COLUMNS) and len(rows) == 10_001
    stored = {
        int(r[0]): (r[1], r[2])
        for r in db.conn.execute("SELECT id, text, posted_at FROM mentions WHERE head_id IS NULL")
    }
    col = {name: i for i, name in enumerate(COLUMNS)}
    for row in rows[1:]:
        text, posted = stored[int(row[col["mention_id"]])]
        assert row[col["text"]] == text
        assert row[col["received_at"]] == datetime.fromtimestamp(posted, UTC).replace(tzinfo=None).isoformat(" ")
    assert {int(r[col["mention_id"]]) for r in rows[1:]} == set(stored)

    xlsx_path = write_summary(summary, Format.XLSX, tmp_path / "items.xlsx", tz=UTC)
    book = openpyxl.load_workbook(xlsx_path, read_only=True)
    sheet = book["Items"]
    xrows = list(sheet.iter_rows(values_only=True))
    book.close()
    assert list(xrows[0]) == list(COLUMNS) and len(xrows) == 10_001
    for row in xrows[1:]:
        text, posted = stored[int(row[col["mention_id"]])]
        assert row[col["text"]] == text
        assert row[col["received_at"]] == datetime.fromtimestamp(posted, UTC).replace(tzinfo=None)


def test_xlsx_never_turns_customer_text_into_formulas(
    db: sqlite_utils.Database, clock: FakeClock, tmp_path: Path
) -> None:
    big = big_shift(db, clock, 3)
    db.conn.execute("UPDATE mentions SET text = '=HYPERLINK(\"http://evil\")' WHERE id = ?", (big.ids["0"],))
    summary = SummaryBuilder(big.repo, clock).build(big.shift)
    path = write_summary(summary, Format.XLSX, tmp_path / "x.xlsx")
    book = openpyxl.load_workbook(path)
    values = [c.value for row in book["Items"].iter_rows() for c in row]
    assert '=HYPERLINK("http://evil")' in values
    assert all(c.data_type != "f" for row in book["Items"].iter_rows() for c in row)


# ---------------------------------------------------------------------------------------------------- reports
def test_html_and_pdf_reports_carry_charts_and_figures(summary: ShiftSummary, tmp_path: Path) -> None:
    html = write_summary(summary, Format.HTML, tmp_path / "r.html", tz=UTC).read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 4  # volume, SLA, first response, Net Easy
    assert "Shift report · Ana Agent" in html and "Chase the courier" in html
    assert "<script" not in html.lower()
    pdf = write_summary(summary, Format.PDF, tmp_path / "r.pdf", tz=UTC).read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")


def test_report_escapes_customer_html(db: sqlite_utils.Database, clock: FakeClock, tmp_path: Path) -> None:
    big = big_shift(db, clock, 2)
    db.conn.execute("UPDATE mentions SET tags = 'x', text = '<script>alert(1)</script> parcel' WHERE id = ?",
                    (big.ids["0"],))  # fmt: skip
    summary = SummaryBuilder(big.repo, clock).build(big.shift)
    html = write_summary(summary, Format.HTML, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_redacted_exports_name_no_customer(scripted: ScriptedShift, clock: FakeClock, tmp_path: Path) -> None:
    summary = SummaryBuilder(scripted.repo, clock).build(scripted.shift, redact=True)
    for fmt in (Format.JSON, Format.CSV, Format.HTML):
        data = write_summary(summary, fmt, tmp_path / f"r.{fmt.value}").read_text(encoding="utf-8-sig")
        for handle in ("@ana", "@ben", "@cara", "@dan", "@eve", "mastodon.example/@"):
            assert handle not in data, (fmt, handle)


def test_no_export_ever_carries_a_token(
    db: sqlite_utils.Database, clock: FakeClock, scripted: ScriptedShift, tmp_path: Path
) -> None:
    secrets = MemorySecretStore()
    secrets.set("mastodon:1", TOKEN)
    # The token sits in the secret store; raw API payloads in the database may echo it.
    db.conn.execute("UPDATE mentions SET raw = ?", (json.dumps({"access_token": TOKEN}),))
    service = ExportService(Path("unused"), clock, SettingsRepo(db), open_repo=lambda _p: ShiftRepo(db))
    for fmt in Format:
        out = service.export(scripted.shift.id, fmt, tmp_path / f"shift.{fmt.value}")
        assert TOKEN.encode() not in out.read_bytes(), fmt
    assert not list(tmp_path.glob(".*.part"))


# ---------------------------------------------------------------------------------------------------- atomicity
def test_failed_write_leaves_no_file_under_the_final_name(tmp_path: Path) -> None:
    target = tmp_path / "report.pdf"

    def fail_midway(stream: BinaryIO) -> None:
        stream.write(b"%PDF-1.7 half a report")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(target, fail_midway)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "shift.json"
    target.write_bytes(b"previous")

    def fail(stream: BinaryIO) -> None:
        stream.write(b"{")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        write_atomic(target, fail)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["shift.json"]


def test_export_into_a_missing_folder_is_a_clear_error(summary: ShiftSummary, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="does not exist"):
        write_summary(summary, Format.JSON, tmp_path / "nope" / "s.json")


def test_format_from_extension_or_name(tmp_path: Path) -> None:
    assert format_for(tmp_path / "a.PDF") is Format.PDF
    assert format_for(tmp_path / "a.htm") is Format.HTML
    assert format_for(tmp_path / "a.bin", "xlsx") is Format.XLSX
    with pytest.raises(ExportError, match="Unknown export format 'doc'"):
        format_for(tmp_path / "a.doc")


# ---------------------------------------------------------------------------------------------------- service
def test_async_export_runs_off_the_loop_with_progress(
    db: sqlite_utils.Database, clock: FakeClock, tmp_path: Path, arun: Any
) -> None:
    path = tmp_path / "db.sqlite3"
    file_db = sqlite_utils.Database(path)
    file_db.conn.close()
    from storage.db import open_database

    real = open_database(path)
    scripted = scripted_shift(real, clock)
    service = ExportService(path, clock, SettingsRepo(real))
    seen: list[tuple[float, str]] = []

    async def run() -> Path:
        return await service.export_async(
            scripted.shift.id, Format.PDF, tmp_path / "s.pdf", progress=lambda f, m: seen.append((f, m))
        )

    try:
        out = arun(run())
    finally:
        service.close()
        real.conn.close()
    assert out.read_bytes().startswith(b"%PDF")
    assert seen[0][0] == 0.0 and seen[-1][0] == 1.0 and "Saved" in seen[-1][1]
    assert [f for f, _m in seen] == sorted(f for f, _m in seen)


def test_unknown_shift_is_a_clear_error(db: sqlite_utils.Database, clock: FakeClock, tmp_path: Path) -> None:
    service = ExportService(Path("unused"), clock, SettingsRepo(db), open_repo=lambda _p: ShiftRepo(db))
    with pytest.raises(ExportError, match="There is no shift yet"):
        service.export(None, Format.JSON, tmp_path / "s.json")
    ShiftRepo(db).start("Bo", at(8))
    with pytest.raises(ExportError, match="There is no shift 42"):
        service.export(42, Format.JSON, tmp_path / "s.json")
    assert dataclasses.is_dataclass(service.build(None))
