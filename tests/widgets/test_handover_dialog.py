"""The hand-over at the end of a team shift and what the next shift finds (issue 23 item 1), on a real PostgreSQL.

Alex and Sam are agents logged in as their own PostgreSQL roles (tests/console/team/shift_support.py), as on two
machines: Alex's dialog hands two items to Sam through Alex's login; Sam's start-of-shift dialog reads them through
Sam's. The offline case uses a port that answers as an unreachable server does (``TeamUnavailable``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import qasync
from PySide6.QtWidgets import QMainWindow
from pytestqt.qtbot import QtBot

from console.reports.export.service import ExportService
from console.shifts.service import ShiftService
from console.team.handover import HandoverService, Pending
from console.team.supervisor import SupervisorView
from storage.db import open_database
from storage.errors import TeamUnavailable
from storage.settings import SettingsRepo
from storage.shifts import ShiftRepo
from storage.team.claims import ClaimRepo
from tests.console.team.shift_support import Team, team
from tests.fakes.clock import FakeClock
from tests.team_pg import TeamPg
from widgets.export_dialog import ExportDialog
from widgets.handover_dialog import Handed, HandoverDialog, ShiftStartDialog, team_colleagues
from widgets.shift_dialog import ShiftActions
from widgets.supervisor_window import POOL

ROLES = {"alex": "agent", "sam": "agent"}


@pytest.fixture
def shift(team_pg: TeamPg, arun: Any, qloop: qasync.QEventLoop) -> Iterator[Team]:
    stack = AsyncExitStack()
    t: Team = arun(stack.enter_async_context(team(team_pg, ROLES)), timeout=20)
    try:
        yield t
    finally:
        arun(stack.aclose(), timeout=20)


def open_dialog(qtbot: QtBot, service: Any, clock: FakeClock, **kw: Any) -> HandoverDialog:
    dialog = HandoverDialog(service, clock, **kw)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: not dialog.is_busy() and "Reading" not in dialog.intro.text(), timeout=10_000)
    return dialog


def test_two_items_handed_to_a_colleague_are_listed_at_the_start_of_her_shift(
    qtbot: QtBot, shift: Team, arun: Any
) -> None:
    t = shift
    now = int(time.time())
    clock = FakeClock(now)
    alex = HandoverService(t.pools["alex"], "alex", clock, mention_ids=lambda keys: {k: 41 for k in keys[:1]})
    arun(alex.start_shift("shift-alex"), timeout=10)
    first = arun(t.mention("1", now - 600), timeout=10)
    second = arun(t.mention("2", now - 500, customer="bo"), timeout=10)
    arun(t.event("alex", now - 100, "note_added", first, {"text": "refund approved"}), timeout=10)
    for item in (first, second):
        assert arun(ClaimRepo(t.pools["alex"], t.schema).claim(item, "alex", 600), timeout=10) is not None
    arun(t.event("sam", now - 7200, "shift_ended", None, {"shift_uid": "s0", "agent": "sam", "notes": ""}), timeout=10)
    late = arun(t.mention("3", now - 3000, customer="cy"), timeout=10)  # due 20 minutes ago, while Sam was away

    view = SupervisorView(t.pools["alex"], t.schema, "alex", clock)
    dialog = open_dialog(
        qtbot, alex, clock, colleagues=lambda: team_colleagues(view.snapshot),
        labels=lambda ids: {i: "@ana · where is my order" for i in ids}, notes="tell Sam about the refund",
    )  # fmt: skip
    lines = dialog.lines()
    assert len(lines) == 2
    assert lines[0].startswith("@ana · where is my order · you are replying · due ")
    assert lines[0].endswith("note by alex: refund approved")
    assert lines[1].startswith("Mastodon · @care · #2 · you are replying")
    assert dialog.intro.text().startswith("You hold 2 items.")
    combo = [dialog.to_combo.itemText(i) for i in range(dialog.to_combo.count())]
    # Colleagues (the owner is a member too), never oneself; the pool last, and first choice while nobody works.
    assert combo == ["postgres · off shift · offline", "sam · off shift · offline", POOL]
    assert dialog.target() is None
    dialog.to_combo.setCurrentIndex(dialog.to_combo.findData("sam"))
    dialog.note_edit.setPlainText("call her back at 3")
    with qtbot.waitSignal(dialog.handed_over, timeout=10_000) as handed:
        dialog.hand_button.click()
    done = handed.args[0]
    assert isinstance(done, Handed) and done.note == "call her back at 3"
    assert done.result.to == "sam" and set(done.result.items) == {first, second}
    assert arun(t.rows("SELECT count(*) FROM claims"), timeout=10) == [(0,)]  # released with the hand-over
    assigned = arun(t.rows("SELECT key, assigned_to FROM items WHERE key = ANY(%s)", [first, second]), timeout=10)
    assert sorted(assigned) == sorted([(first, "sam"), (second, "sam")])

    # Sam, on her own login: starting the shift shows them, marked, and what breached meanwhile.
    sam = HandoverService(t.pools["sam"], "sam", FakeClock(now + 60))
    start = arun(sam.start_shift("shift-sam"), timeout=10)
    panel = ShiftStartDialog(start, "sam", FakeClock(now + 60))
    qtbot.addWidget(panel)
    panel.show()
    texts = panel.handed_texts()
    assert texts[0] == "Handed over to you by alex · call her back at 3"
    assert sorted(t.strip() for t in texts[1:]) == ["Mastodon · @care · #1", "Mastodon · @care · #2"]
    assert panel.intro.text().endswith("2 items handed over, 1 breach meanwhile.")
    breached = panel.breached_texts()
    assert len(breached) == 1 and breached[0].startswith("Mastodon · @care · #3 · was due ")
    assert breached[0].endswith("still unanswered")
    assert late


def test_nothing_held_says_so_and_the_pool_takes_the_note(qtbot: QtBot, shift: Team, arun: Any) -> None:
    t = shift
    clock = FakeClock(int(time.time()))
    alex = HandoverService(t.pools["alex"], "alex", clock)
    dialog = open_dialog(qtbot, alex, clock)
    assert dialog.lines() == [] and dialog.intro.text().startswith("You hold nothing on the team")
    assert dialog.target() is None  # no colleague list given: the pool
    with qtbot.waitSignal(dialog.handed_over, timeout=10_000) as handed:
        dialog.hand_button.click()
    assert handed.args[0].result.to is None and handed.args[0].result.items == []
    rows = arun(t.rows("SELECT author, data->>'to' FROM events WHERE kind = 'handed_over'"), timeout=10)
    assert rows == [("alex", None)]


class Unreachable:
    """A hand-over port whose server does not answer (what HandoverService raises then)."""

    member = "alex"

    async def pending_for(self, member: str | None = None) -> Pending:
        raise TeamUnavailable("connection refused")

    async def hand_over(self, **_kw: Any) -> Any:
        raise AssertionError("nothing is handed over offline")

    async def start_shift(self, shift_uid: str | None = None) -> Any:
        raise TeamUnavailable("connection refused")


def test_offline_nothing_is_handed_over_and_the_shift_can_end_here(
    qtbot: QtBot, qloop: qasync.QEventLoop, clock: FakeClock
) -> None:
    dialog = HandoverDialog(Unreachable(), clock, notes="my notes")
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.message_text() != "", timeout=5000)
    assert dialog.message_text().startswith("The team database cannot be reached: connection refused")
    assert "Nothing was handed over" in dialog.message_text()
    assert not dialog.hand_button.isEnabled()
    assert dialog.retry_button.isVisible() and dialog.without_button.isVisible()
    assert dialog.note_edit.toPlainText() == "my notes"  # nothing typed is lost
    with qtbot.waitSignal(dialog.end_without_handover, timeout=1000):
        dialog.without_button.click()


# ---------------------------------------------------------------------------------------------------- shift actions
class PgTeam:
    """A member's running team as the shift actions use it (``TeamService.handover``/``supervisor``), on its login."""

    def __init__(self, t: Team, member: str, clock: FakeClock) -> None:
        self._t, self.member, self._clock = t, member, clock

    def handover(self) -> HandoverService:
        return HandoverService(self._t.pools[self.member], self.member, self._clock)

    def supervisor(self) -> SupervisorView:
        return SupervisorView(self._t.pools[self.member], self._t.schema, self.member, self._clock)


class TeamWindow(QMainWindow):
    """The main window's part the shift actions read: its ``team``."""

    def __init__(self, team: PgTeam) -> None:
        super().__init__()
        self.team = team
        self.menuBar().addMenu("&File").addAction("&Quit")


def actions_for(qtbot: QtBot, tmp_path: Path, name: str, team: PgTeam, clock: FakeClock) -> ShiftActions:
    db = open_database(tmp_path / f"{name}.sqlite3")
    window = TeamWindow(team)
    qtbot.addWidget(window)
    exports = ExportService(tmp_path / f"{name}.sqlite3", clock, SettingsRepo(db))
    actions = ShiftActions(window, ShiftService(ShiftRepo(db), SettingsRepo(db), clock), exports, clock,
                           export_dir=tmp_path)  # fmt: skip
    window.destroyed.connect(lambda: (exports.close(), db.conn.close()))
    return actions


def test_team_shift_actions_hand_over_at_the_end_and_show_it_at_the_start(
    qtbot: QtBot, shift: Team, arun: Any, tmp_path: Path
) -> None:
    t = shift
    now = int(time.time())
    clock = FakeClock(now)
    alex = actions_for(qtbot, tmp_path, "alex", PgTeam(t, "alex", clock), clock)
    start = alex.start_shift()
    start.name_edit.setText("alex")
    start.start_button.click()
    window = alex.parent()
    assert isinstance(window, QMainWindow)
    qtbot.waitUntil(lambda: "Nothing was handed over to you" in window.statusBar().currentMessage(), timeout=10_000)
    assert alex.shift_start_dialog is None
    assert arun(t.rows("SELECT on_shift_since IS NOT NULL FROM members WHERE name = 'alex'"), timeout=10) == [(True,)]
    item = arun(t.mention("5", now - 300), timeout=10)
    assert arun(ClaimRepo(t.pools["alex"], t.schema).claim(item, "alex", 600), timeout=10) is not None

    dialog = alex.end_shift()
    assert isinstance(dialog, HandoverDialog)  # in a team, End shift hands over first
    qtbot.waitUntil(lambda: dialog.lines() != [], timeout=10_000)
    dialog.to_combo.setCurrentIndex(dialog.to_combo.findData("sam"))
    dialog.note_edit.setPlainText("she wants a refund")
    dialog.hand_button.click()
    qtbot.waitUntil(lambda: alex._shifts.current() is None, timeout=10_000)
    last = alex._shifts.last()
    assert last is not None and last.notes == "she wants a refund"  # the local shift ends with the hand-over
    assert arun(t.rows("SELECT assigned_to FROM items WHERE key = %s", item), timeout=10) == [("sam",)]
    assert [d for d in window.findChildren(ExportDialog) if d.isVisible()]  # then the summary, as solo

    sam = actions_for(qtbot, tmp_path, "sam", PgTeam(t, "sam", FakeClock(now + 30)), FakeClock(now + 30))
    begin = sam.start_shift()
    begin.name_edit.setText("sam")
    begin.start_button.click()
    qtbot.waitUntil(lambda: sam.shift_start_dialog is not None, timeout=10_000)
    panel = sam.shift_start_dialog
    assert panel is not None and panel.isVisible()
    assert panel.handed_texts() == ["Handed over to you by alex · she wants a refund", "    Mastodon · @care · #5"]
