"""The unreadable-items list: what arrived, why, when; dismiss; try again; the strip's entry point."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import qasync
from pytestqt.qtbot import QtBot

from console.model import Health
from console.sync.health import AccountHealth, HealthSnapshot, QuarantinedItem, RetryOutcome
from tests.fakes.clock import FakeClock
from widgets.health import HealthStrip
from widgets.quarantine_dialog import QuarantineDialog, raw_preview
from widgets.theme import local_time


class FakeQuarantine:
    """An in-memory quarantine: dismiss removes; retry "reads" the items whose raw JSON has a status."""

    def __init__(self, items: list[QuarantinedItem]) -> None:
        self.items = items
        self.retried: list[list[int]] = []

    def quarantined_items(self, account_id: int | None = None) -> list[QuarantinedItem]:
        return sorted(self.items, key=lambda i: (-i.at, -i.id))

    def dismiss_quarantined(self, ids: Iterable[int]) -> int:
        before = len(self.items)
        wanted = set(ids)
        self.items = [i for i in self.items if i.id not in wanted]
        return before - len(self.items)

    async def retry_quarantined(self, ids: Iterable[int]) -> RetryOutcome:
        wanted = list(ids)
        self.retried.append(wanted)
        readable = [i.id for i in self.items if i.id in wanted and '"status"' in i.raw_json]
        self.dismiss_quarantined(readable)
        still = len(wanted) - len(readable)
        return RetryOutcome(len(readable), len(readable), still, f"{len(readable)} read, {still} still unreadable")


def item(item_id: int, at: int, raw: str, error: str = "status has no id") -> QuarantinedItem:
    return QuarantinedItem(item_id, 1, "care", "mastodon", f"n{item_id}", error, raw, at)


def dialog(qtbot: QtBot, source: FakeQuarantine, clock: FakeClock) -> QuarantineDialog:
    widget = QuarantineDialog(source, clock.now)
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_lists_what_arrived_why_and_when_newest_first(qtbot: QtBot, clock: FakeClock) -> None:
    now = int(clock.now())
    source = FakeQuarantine([item(1, now - 7200, '{"id":"1"}'), item(2, now - 60, "not json", "the body is HTML")])
    widget = dialog(qtbot, source, clock)
    assert widget.table.rowCount() == 2
    assert widget.row_texts(0) == [local_time(now - 60, now=now), "Mastodon @care", "n2", "the body is HTML"]
    assert widget.row_texts(1)[2:] == ["n1", "status has no id"]
    widget.select_rows([1])
    assert widget.raw.toPlainText() == raw_preview('{"id":"1"}') == '{\n  "id": "1"\n}'
    assert widget.dismiss_button.isEnabled() and widget.retry_button.isEnabled()


def test_dismiss_removes_the_selected_items(qtbot: QtBot, clock: FakeClock) -> None:
    now = int(clock.now())
    source = FakeQuarantine([item(1, now - 10, "{}"), item(2, now - 20, "{}"), item(3, now - 30, "{}")])
    widget = dialog(qtbot, source, clock)
    with qtbot.waitSignal(widget.changed):
        widget.select_rows([0, 2])
        widget.dismiss_button.click()
    assert [i.id for i in source.items] == [2]
    assert widget.table.rowCount() == 1 and widget.status.text() == "Dismissed 2 items."


def test_try_again_reads_all_items_and_reports_the_outcome(
    qtbot: QtBot, clock: FakeClock, qloop: qasync.QEventLoop
) -> None:
    now = int(clock.now())
    source = FakeQuarantine([item(1, now - 10, '{"status":{"id":"5"}}'), item(2, now - 20, "{}")])
    widget = dialog(qtbot, source, clock)
    with qtbot.waitSignal(widget.changed):  # emitted once the outcome is on screen
        widget.retry_button.click()  # nothing selected: every item is tried
    assert source.retried == [[1, 2]]
    assert [i.id for i in widget.items] == [2]
    assert widget.status.text() == "1 read, 1 still unreadable"
    assert widget.retry_button.isEnabled()


def test_empty_quarantine_says_so(qtbot: QtBot, clock: FakeClock) -> None:
    widget = dialog(qtbot, FakeQuarantine([]), clock)
    assert widget.table.rowCount() == 0 and not widget.retry_button.isEnabled()
    assert "Nothing is kept aside" in widget.status.text()


def test_health_strip_offers_the_list_when_items_are_kept_aside(qtbot: QtBot, clock: FakeClock) -> None:
    strip = HealthStrip()
    qtbot.addWidget(strip)
    strip.show()
    base = AccountHealth(
        account_id=1, kind="mastodon", handle="care", display_name="Care", is_sandbox=False, health=Health.OK,
        reason="", next_attempt_at=None, last_success_at=None, consecutive_failures=0, quarantined=0,
    )  # fmt: skip
    strip.set_snapshot(HealthSnapshot((base,), None, 0), clock.now())
    assert strip.quarantine_button().isHidden()
    strip.set_snapshot(HealthSnapshot((dataclasses.replace(base, quarantined=3),), None, 0), clock.now())
    assert strip.quarantine_button().isVisible() and strip.quarantine_button().text() == "3 unreadable items…"
    with qtbot.waitSignal(strip.quarantine_requested):
        strip.quarantine_button().click()
