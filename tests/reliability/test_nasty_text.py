"""Nasty text from the wire (lone surrogates, invalid UTF-8, controls, bidi overrides, zero-width, emoji ZWJ
sequences, markup and script, huge posts) is stored, listed, shown and exported as inert plain text."""

from __future__ import annotations

import copy
import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlite_utils
from pytestqt.qtbot import QtBot

from console.channels.base import AccountRef
from console.channels.mastodon import MastodonConnector
from console.ports import MemorySecretStore
from console.queue import QueueService
from console.reports.export.codec import load_summary
from console.reports.export.service import ExportService, Format
from console.shifts.service import ShiftService
from console.sync.inbox import Poller
from storage.accounts import AccountRepo, SyncStateRepo
from storage.db import open_database
from storage.mentions import MentionRepo
from storage.settings import SettingsRepo
from storage.shifts import ShiftRepo
from tests.fakes.clock import FakeClock
from tests.fakes.http_server import FakeHttpServer
from tests.reliability.conftest import TALLY
from tests.widgets.factory import Factory

DATA = Path(__file__).resolve().parents[1] / "data"

NASTY_TEXTS = [
    "refund \u202eplease\u202c now",  # right-to-left override
    "zero\u200bwidth\u200d\ufeffjoiners",
    "family 👩‍👩‍👧‍👦 flag 🏳️‍🌈 keycap 3️⃣",
    "<script>alert('x')</script><img src=http://evil.example/p.png onerror=alert(1)>",
    "bell\x07 escape\x1b[31m red nul-free \x7f del",
    "<a href='javascript:alert(1)'>click</a> & &amp; &lt;",
    "ok " + "long words " * 20_000,  # a 220 kB post
]


def _notification(i: int, content: str) -> dict[str, Any]:
    template = json.loads((DATA / "mastodon" / "reply.json").read_text(encoding="utf-8"))[0]
    n = copy.deepcopy(template)
    n["id"] = str(1000 + i)
    n["status"]["id"] = str(110000000000001000 + i)
    n["status"]["in_reply_to_id"] = None
    n["status"]["content"] = content
    return n


def test_invalid_text_from_the_wire_is_stored_without_blocking_the_sync(arun: Callable[..., Any]) -> None:
    clock = FakeClock()
    db = open_database(None)
    accounts = AccountRepo(db)
    mentions = MentionRepo(db)
    page = [
        _notification(1, "<p>lone surrogate \ud800 here</p>"),
        _notification(2, "<p>raw bytes INVALID_UTF8 here</p>"),
        _notification(3, "<p>" + NASTY_TEXTS[3].replace("<", "&lt;") + "</p>"),
    ]
    body = json.dumps(page).encode().replace(b"INVALID_UTF8", b"\xff\xfe\xc3(")
    with FakeHttpServer() as server:
        server.reply(200, body=body, headers={"Content-Type": "application/json"})
        server.reply(200, json=[])
        account = accounts.add(kind="mastodon", handle="brand", base_url=server.base_url, now=int(clock.now()))

        async def sync() -> Any:
            async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
                secrets = MemorySecretStore()
                secrets.set(f"mastodon:{account.id}", "tok")
                ref = AccountRef(account.id, "mastodon", "brand", server.base_url)
                connector = MastodonConnector(client, account=ref, secrets=secrets, clock=clock)
                return await Poller(mentions, accounts, SyncStateRepo(db), {account.id: connector}, clock).sync_once()

        (report,) = arun(sync())
    assert report.ok, report.error
    texts = sorted(row.text for row in mentions.rows_by_id(mentions.queue_ids()).values())
    stored_or_quarantined = len(texts) + report.quarantined
    assert stored_or_quarantined == 3, "an item with bad text was dropped silently"
    for text in texts:
        text.encode("utf-8")  # storable and displayable: no lone surrogates
    assert any("<script>" in t for t in texts)  # markup is kept literally, not interpreted
    db.conn.close()
    TALLY["bad inputs tried"] += 3


@pytest.fixture
def file_db(tmp_path: Path) -> Any:
    db = open_database(tmp_path / "care.db")
    yield db
    db.conn.close()


@pytest.mark.gui
def test_nasty_text_is_inert_in_the_queue_the_conversation_and_every_export(
    qtbot: QtBot, qtmodeltester: Any, file_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    from widgets.conversation import ConversationPane
    from widgets.queue_model import QueueModel

    clock = FakeClock()
    factory = Factory(file_db, clock)
    shifts = ShiftService(ShiftRepo(file_db), SettingsRepo(file_db), clock)
    shifts.start("Robin <b>\u202e")
    clock.advance(60)
    ids = [factory.add(text=text, handle=f"u{i}", name=f"N\u202e{i}<i>") for i, text in enumerate(NASTY_TEXTS)]
    clock.advance(60)
    service = QueueService(factory.mentions, factory.events, clock)

    model = QueueModel(service, clock)
    qtmodeltester.check(model)
    model.set_ids(ids)
    for row in range(model.rowCount()):
        for col in range(model.columnCount()):
            model.data(model.index(row, col))

    opened: list[str] = []
    pane = ConversationPane(service, clock, open_url=lambda url: opened.append(url.toString()) or True)
    qtbot.addWidget(pane)
    pane.resize(560, 700)
    pane.show()
    for mention_id, text in zip(ids, NASTY_TEXTS, strict=True):
        pane.show_mention(mention_id)
        shown = pane.thread_text()
        probe = text.strip()[:40]
        assert probe in shown or probe.replace("\x1b", "") in shown, f"{probe!r} not shown literally"
    assert opened == []  # nothing remote was opened or fetched to show a mention

    clock.advance(60)
    shifts.end("notes <script>x</script>")
    service_exports = ExportService(tmp_path / "care.db", clock, SettingsRepo(file_db))
    try:
        out = {fmt: service_exports.export(None, fmt, tmp_path / f"s.{fmt.value}") for fmt in Format}
    finally:
        service_exports.close()
    summary = load_summary(out[Format.JSON])
    assert summary.shift.notes == "notes <script>x</script>"
    html = out[Format.HTML].read_text(encoding="utf-8")
    assert "<script>" not in html  # escaped: the report never runs customer or agent text
    limit = csv.field_size_limit(10**7)  # the 220 kB post is one cell
    try:
        with out[Format.CSV].open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
    finally:
        csv.field_size_limit(limit)
    assert rows, "the CSV has a header at least"
    for cell in (c for r in rows for c in r):
        assert not cell.startswith(("=", "+", "-", "@")) or cell.lstrip("-+").replace(".", "").isdigit(), cell
    TALLY["bad inputs tried"] += len(NASTY_TEXTS)
