"""The PDF report keeps Chinese, Japanese, Korean and emoji in customer text (issue 19, §16): fallback fonts."""

from __future__ import annotations

import re
from datetime import UTC
from pathlib import Path

import pytest
import sqlite_utils
from pypdf import PdfReader

from console.reports.export.service import Format, write_summary
from console.reports.summary import SummaryBuilder
from storage.db import open_database
from storage.shifts import ShiftRepo
from tests.console.shift_script import AGENT, Script, at
from tests.fakes.clock import FakeClock

MESSAGES = {
    "zh": "我的订单在哪里",
    "ja": "注文がまだ届きません",
    "ko": "주문이아직안왔어요",
    "zh-hant": "請幫我查詢訂單",
    "emoji": "Parcel📦never came😡",
}


def _pdf_text(path: Path) -> str:
    """The PDF's text with all whitespace (and the NULs pypdf leaves in two-byte fonts) removed."""
    text = "".join(page.extract_text() for page in PdfReader(path).pages)
    return re.sub(r"[\s\x00]", "", text)


@pytest.fixture
def pdf(db: sqlite_utils.Database, clock: FakeClock, tmp_path: Path) -> Path:
    s = Script(db, clock)
    repo = ShiftRepo(db)
    shift = repo.start(AGENT, at(8))
    for i, text in enumerate(MESSAGES.values()):
        s.post(s.mastodon.id, "mastodon", f"c{i}", text, at(8, i))  # open at the end: in the hand-over
    clock.set(at(9))
    summary = SummaryBuilder(repo, clock).build(repo.end(shift.id, at(9), ""))
    return write_summary(summary, Format.PDF, tmp_path / "shift.pdf", tz=UTC)


@pytest.mark.parametrize("script", list(MESSAGES))
def test_pdf_keeps_cjk_and_emoji_in_customer_text(pdf: Path, script: str) -> None:
    assert re.sub(r"\s", "", MESSAGES[script]) in _pdf_text(pdf)


def test_pdf_embeds_the_fallback_fonts_only_when_needed(pdf: Path, tmp_path: Path) -> None:
    fonts = {str(f.get("/BaseFont", "")) for page in PdfReader(pdf).pages for f in _fonts(page)}
    assert any("NotoSansCJK" in name for name in fonts), fonts
    plain = tmp_path / "plain.pdf"
    clock = FakeClock()
    db = open_database(None)
    s = Script(db, clock)
    repo = ShiftRepo(db)
    shift = repo.start("Bo", at(20))
    s.post(s.mastodon.id, "mastodon", "zed", "Where is my parcel?", at(20, 5))
    clock.set(at(21))
    write_summary(SummaryBuilder(repo, clock).build(repo.end(shift.id, at(21), "")), Format.PDF, plain, tz=UTC)
    db.conn.close()
    names = {str(f.get("/BaseFont", "")) for page in PdfReader(plain).pages for f in _fonts(page)}
    assert names and not any("Noto" in name for name in names), names


def _fonts(page: object) -> list[dict[str, object]]:
    resources = page["/Resources"]  # type: ignore[index]
    fonts = resources.get("/Font", {}) if resources else {}
    return [fonts[name].get_object() for name in fonts]
