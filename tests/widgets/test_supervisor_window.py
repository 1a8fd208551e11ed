"""The supervisor window (issue 23 item 2) on a real PostgreSQL: live updates, reassign, release, roles.

Alex and Sam are agents and Pat the supervisor, each logged in as their own PostgreSQL role (tests/console/team/
shift_support.py). The window runs over Pat's real ``SupervisorView``; its live updates come from the server's own
notifications (a ``TeamListener`` standing in for ``TeamService.subscribe``), so "within a second of an agent's
claim" is the real path: claim, NOTIFY, snapshot, table.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import qasync
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from console.ports import MemorySecretStore
from console.runtime import SandboxOptions
from console.team.handover import HandoverService
from console.team.supervisor import SupervisorView
from storage.errors import TeamUnavailable
from storage.team.claims import ClaimRepo
from storage.team.connect import connect_conninfo
from storage.team.notify import TeamListener
from tests.console.team.shift_support import Team, team
from tests.fakes.clock import FakeClock
from tests.team_pg import TeamPg
from tests.widgets.agent_app import AgentApp
from tests.widgets.shift_team_fake import MemorySupervisor, ShiftTeam
from tests.widgets.team_fake import Status
from tests.widgets.test_team_window import head_with
from widgets.handover_dialog import HandoverDialog
from widgets.supervisor_window import (
    POOL,
    ReassignDialog,
    SupervisorWindow,
    duration_text,
    item_label,
    supervisor_role,
)
from widgets.theme import local_time

ROLES = {"alex": "agent", "sam": "agent", "pat": "supervisor"}


@pytest.fixture
def now() -> int:
    return int(time.time())  # the server decides claim ages and presence with its own clock


@pytest.fixture
def shift(team_pg: TeamPg, arun: Any, qloop: qasync.QEventLoop) -> Iterator[Team]:
    stack = AsyncExitStack()
    t: Team = arun(stack.enter_async_context(team(team_pg, ROLES)), timeout=20)
    try:
        yield t
    finally:
        arun(stack.aclose(), timeout=20)


def listen(pg: TeamPg, window: SupervisorWindow) -> asyncio.Task[None]:
    """Feed the server's notifications to the window's listener, as ``TeamService.subscribe`` does in the app."""

    async def run() -> None:
        listener = TeamListener(await connect_conninfo(pg.conninfo, pg.schema), pg.schema)
        await listener.start()
        try:
            await listener.run(window._on_team_change)
        finally:
            await listener.aclose()

    return asyncio.get_event_loop().create_task(run())


def make_window(qtbot: QtBot, t: Team, member: str, clock: FakeClock, **kw: Any) -> SupervisorWindow:
    view = SupervisorView(t.pools[member], t.schema, member, clock)
    window = SupervisorWindow(view, clock, member=member, **kw)
    qtbot.addWidget(window)
    window.resize(800, 600)
    window.show()
    qtbot.waitExposed(window)
    return window


def held_rows(window: SupervisorWindow) -> list[list[str]]:
    return window.held.texts() if window.held.stack.currentWidget() is window.held.table else []


# ---------------------------------------------------------------------------------------------------- words
def test_words_for_items_durations_and_roles() -> None:
    assert item_label("mastodon:https://social.example:care#1234") == "Mastodon · @care · #1234"
    assert item_label("bluesky:https://bsky.example:care.example#at://did:plc:x/app.bsky.feed.post/3kabcdefghijk") == (
        "Bluesky · @care.example · #…defghijk"
    )
    assert [duration_text(s) for s in (None, 40, 720, 3900)] == ["—", "40 s", "12 min", "1 h 05"]
    assert supervisor_role("supervisor") and supervisor_role("owner") and not supervisor_role("agent")


# ---------------------------------------------------------------------------------------------------- live
def test_the_view_shows_an_agents_claim_within_a_second(
    qtbot: QtBot, shift: Team, team_pg: TeamPg, arun: Any, now: int
) -> None:
    t = shift
    clock = FakeClock(now)
    arun(HandoverService(t.pools["alex"], "alex", clock).start_shift("s-alex"), timeout=10)
    first = arun(t.mention("1", now - 600), timeout=10)
    waiting = arun(t.mention("2", now - 2400), timeout=10)  # due 10 minutes ago: a breach this hour, or the last

    changes: list[Any] = []
    window = make_window(qtbot, t, "pat", clock, subscribe=changes.append)
    assert len(changes) == 1  # the window subscribed once
    qtbot.waitUntil(lambda: window.snapshot is not None, timeout=10_000)
    assert window.tiles["on_shift"].value.text() == "1" and window.tiles["waiting"].value.text() == "2"
    assert window.people.texts()[0][0] == "alex"
    assert window.people.texts()[0][1].startswith("Since ")
    assert held_rows(window) == [] and "Nobody holds an item now" in window.held.empty.text()
    channels = window.channels.texts()
    assert channels[0][:2] == ["Mastodon", "Mastodon · @care · #2"]

    # The server's notifications reach the window the way TeamService.subscribe delivers them.
    task = listen(team_pg, window)
    try:
        started = window._last_start
        qtbot.waitUntil(lambda: time.monotonic() - started >= 1.0, timeout=3000)  # past the once-a-second limit
        qtbot.waitUntil(lambda: window._task is None, timeout=3000)
        assert arun(ClaimRepo(t.pools["alex"], t.schema).claim(first, "alex", 600), timeout=10) is not None
        qtbot.waitUntil(lambda: [r[1] for r in held_rows(window)] == ["alex"], timeout=1000)
        assert window.people.texts()[0][2] == "1"  # Alex holds one
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            arun(asyncio.wait([task]), timeout=5)
    assert waiting  # the oldest one was shown first


# ---------------------------------------------------------------------------------------------------- actions
def accept_reassign(qtbot: QtBot, window: SupervisorWindow, to: str, note: str) -> None:
    dialog = window.pending_dialog
    assert isinstance(dialog, ReassignDialog)
    index = dialog.to_combo.findText(to)
    assert index >= 0, [dialog.to_combo.itemText(i) for i in range(dialog.to_combo.count())]
    dialog.to_combo.setCurrentIndex(index)
    dialog.note_edit.setText(note)
    dialog.reassign_button.click()


def test_reassign_from_the_window_writes_the_supervisors_event(qtbot: QtBot, shift: Team, arun: Any, now: int) -> None:
    t = shift
    clock = FakeClock(now)
    item = arun(t.mention("7", now - 300), timeout=10)
    assert arun(ClaimRepo(t.pools["alex"], t.schema).claim(item, "alex", 600), timeout=10) is not None
    window = make_window(qtbot, t, "pat", clock)
    qtbot.waitUntil(lambda: len(held_rows(window)) == 1, timeout=10_000)
    assert not window.reassign_action.isEnabled()  # nothing selected yet
    window.held.table.setFocus()
    window.held.table.selectRow(0)
    assert window.reassign_action.isEnabled() and window.release_action.isEnabled()
    window.reassign_action.trigger()
    dialog = window.pending_dialog
    assert isinstance(dialog, ReassignDialog)
    assert dialog.target() == "pat" or dialog.to_combo.currentText() != "alex"  # not back to who holds it
    assert dialog.to_combo.itemText(dialog.to_combo.count() - 1) == POOL
    with qtbot.waitSignal(window.acted, timeout=10_000) as acted:
        accept_reassign(qtbot, window, "sam", "she asked for Sam")
    assert acted.args == ["Reassigned Mastodon · @care · #7 to sam.", True]
    rows = arun(
        t.rows(
            "SELECT author, data->>'to', data->>'note' FROM events WHERE kind = 'reassigned' AND item_key = %s", item
        ),
        timeout=10,
    )
    assert rows == [("pat", "sam", "she asked for Sam")]
    assert arun(t.rows("SELECT assigned_to FROM items WHERE key = %s", item), timeout=10) == [("sam",)]


def test_release_a_stale_claim_asks_first_and_writes_claim_broken(
    qtbot: QtBot, shift: Team, arun: Any, now: int
) -> None:
    t = shift
    clock = FakeClock(now)
    item = arun(t.mention("8", now - 300), timeout=10)
    assert arun(ClaimRepo(t.pools["sam"], t.schema).claim(item, "sam", 0.05), timeout=10) is not None
    arun(asyncio.sleep(0.2), timeout=5)  # Sam's machine went away: the claim expired on the server's clock
    window = make_window(qtbot, t, "pat", clock)
    qtbot.waitUntil(lambda: len(held_rows(window)) == 1, timeout=10_000)
    assert held_rows(window)[0][1:] == ["sam", held_rows(window)[0][2]] and held_rows(window)[0][2].endswith("stale")
    window.held.table.selectRow(0)
    window.release_action.trigger()
    box = window.pending_dialog
    assert isinstance(box, QMessageBox)
    assert box.text() == "Release sam's claim on Mastodon · @care · #8?"
    assert "stopped renewing" in box.informativeText()
    cancel = box.button(QMessageBox.StandardButton.Cancel)
    assert cancel is not None
    cancel.click()
    qtbot.waitUntil(lambda: window.pending_dialog is None, timeout=2000)
    assert arun(t.rows("SELECT count(*) FROM claims"), timeout=10) == [(1,)]  # Cancel released nothing

    window.release_action.trigger()
    box = window.pending_dialog
    assert isinstance(box, QMessageBox)
    with qtbot.waitSignal(window.acted, timeout=10_000) as acted:
        next(b for b in box.buttons() if b.text() == "Release").click()
    assert acted.args == ["Released sam's claim on Mastodon · @care · #8.", True]
    assert arun(t.rows("SELECT count(*) FROM claims"), timeout=10) == [(0,)]
    rows = arun(t.rows("SELECT author FROM events WHERE kind = 'claim_broken' AND item_key = %s", item), timeout=10)
    assert rows == [("pat",)]
    qtbot.waitUntil(lambda: held_rows(window) == [], timeout=5000)


def test_an_agents_login_is_refused_by_the_server_and_the_window_says_so(
    qtbot: QtBot, shift: Team, arun: Any, now: int
) -> None:
    t = shift
    clock = FakeClock(now)
    item = arun(t.mention("9", now - 300), timeout=10)
    assert arun(ClaimRepo(t.pools["sam"], t.schema).claim(item, "sam", 600), timeout=10) is not None
    window = make_window(qtbot, t, "alex", clock)  # a window only supervisors are offered, opened anyway
    qtbot.waitUntil(lambda: len(held_rows(window)) == 1, timeout=10_000)
    window.held.table.selectRow(0)
    window.reassign_action.trigger()
    with qtbot.waitSignal(window.acted, timeout=10_000) as acted:
        accept_reassign(qtbot, window, "alex", "")
    message, ok = acted.args
    assert not ok and message and window.status_text() == message
    assert arun(t.rows("SELECT count(*) FROM events WHERE kind = 'reassigned'"), timeout=10) == [(0,)]


def test_an_empty_team_says_what_to_expect_and_fits_800_by_600(qtbot: QtBot, shift: Team, now: int) -> None:
    window = make_window(qtbot, shift, "pat", FakeClock(now))
    qtbot.waitUntil(lambda: window.snapshot is not None, timeout=10_000)
    assert window.status_text().startswith("Quiet: nobody is on shift and nothing waits.")
    for section in (window.people, window.held, window.channels, window.breaches):
        assert section.stack.currentWidget() is section.empty and section.empty.text()
    assert window.tiles["breaches"].value.text() == "0"
    assert window.width() <= 800 and window.height() <= 600
    assert not window.reassign_button.isEnabled() and not window.release_button.isEnabled()
    # At 800x600 the sections are tabs (two by two would cut every table); Ctrl+1…4 reach them by keyboard.
    assert window.compact and [window.tabs.tabText(i) for i in range(window.tabs.count())] == [
        "Who is on shift", "Who holds what", "Channels", "Breaches this hour",
    ]  # fmt: skip
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=2000)
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is window.held  # (its table takes the keyboard when it has rows)
    window.resize(1200, 760)
    qtbot.waitUntil(lambda: not window.compact, timeout=2000)
    assert window.tabs.count() == 0 and window.held.title.isVisible()


# ---------------------------------------------------------------------------------------------------- two runtimes
def test_two_runtimes_the_supervisor_sees_a_claim_reassigns_and_receives_a_hand_over(
    qtbot: QtBot, qloop: qasync.QEventLoop, team_pg: TeamPg, tmp_path: Path
) -> None:
    """Sam (the team's owner) and Alex (an invited agent) each run the whole app on their own data folder. Sam's
    View → Supervisor… shows Alex's claim within a second of Alex opening the reply box, reassigns the item from
    the window, and at the start of Sam's next shift finds what Alex handed over at the end of theirs."""
    clock = FakeClock()
    sam = AgentApp(tmp_path / "sam", clock, qtbot, qloop, secrets=MemorySecretStore(),
                   sandbox=SandboxOptions(rate_per_minute=0.0, backlog=4, seed=5))  # fmt: skip
    alex = AgentApp(tmp_path / "alex", clock, qtbot, qloop, secrets=MemorySecretStore(),
                    sandbox=SandboxOptions(rate_per_minute=0.0, backlog=0, seed=6))  # fmt: skip
    agent = f"{team_pg.role_prefix}alex"
    try:
        sam.open()
        sam.run(sam.rt.team_admin().init(f"{team_pg.conninfo} schema={team_pg.schema}", "trust", "Sam"), 20)
        invitation = sam.run(sam.rt.team_admin().invite(agent, "agent"), 20)
        sam.restart()
        sam.rt.start_team()
        sam.sync()
        alex.open()
        alex.run(alex.rt.team_admin().join(invitation.connection_string, None, ""), 20)
        alex.restart()
        alex.rt.start_team()

        # View → Supervisor…: the owner has it, the agent does not.
        launcher, theirs_launcher = sam.win.supervisor_launcher, alex.win.supervisor_launcher
        assert launcher is not None and theirs_launcher is not None
        assert launcher.action.isVisible() and not theirs_launcher.action.isVisible()
        launcher.action.trigger()
        window = launcher.window
        assert window is not None and window.isVisible()
        qtbot.waitUntil(lambda: window.snapshot is not None, timeout=20_000)

        first = sam.win.queue_model.mention_at(0)
        assert first is not None
        qtbot.waitUntil(lambda: head_with(alex, first.external_id) is not None, timeout=20_000)
        theirs = head_with(alex, first.external_id)
        assert theirs is not None
        alex.win.queue_view.select_mention(theirs)
        started = window._last_start
        qtbot.waitUntil(lambda: time.monotonic() - started >= 1.0 and window._task is None, timeout=5000)
        composer = alex.win.composer
        assert composer is not None
        alex.focus(composer.editor)  # Alex opens the reply box: the item is claimed on the server
        qtbot.waitUntil(lambda: [r.holder for r in window.held.rows if r] == [agent], timeout=1000)
        label = window.held.texts()[0][0]
        assert label == sam.win.item_labels([first.id])[first.id] and label.startswith("@")  # named as in the queue

        # Reassign from the window: an event with Sam as its author.
        window.held.table.setFocus()
        window.held.table.selectRow(0)
        window.reassign_action.trigger()
        with qtbot.waitSignal(window.acted, timeout=10_000) as acted:
            accept_reassign(qtbot, window, "Sam", "I'll take the refund ones")
        assert acted.args[1] is True, acted.args
        with team_pg.connect() as conn:
            rows = conn.execute("SELECT author, data->>'to', data->>'note' FROM events WHERE kind = 'reassigned'")
            assert rows.fetchall() == [("Sam", "Sam", "I'll take the refund ones")]

        # Alex's shift ends with a hand-over to Sam; Sam's next shift starts with it.
        actions = alex.shift_actions
        assert actions is not None
        start = actions.start_shift()
        start.name_edit.setText(agent)
        start.start_button.click()
        said = alex.win.statusBar().currentMessage

        def started_on_team() -> bool:
            return actions.shift_start_dialog is not None or "Nothing was handed over" in said()

        qtbot.waitUntil(lambda: started_on_team() or "did not hear" in said(), timeout=10_000)
        assert started_on_team(), said()
        if actions.shift_start_dialog is not None:  # the sandbox's old items breached in the last day: said too
            assert actions.shift_start_dialog.handed_texts() == ["Nothing was handed over to you."]
            actions.shift_start_dialog.close()
        dialog = actions.end_shift()
        assert isinstance(dialog, HandoverDialog)
        qtbot.waitUntil(lambda: dialog.lines() != [], timeout=10_000)
        assert dialog.lines()[0].startswith(label)
        dialog.to_combo.setCurrentIndex(dialog.to_combo.findData("Sam"))
        dialog.note_edit.setPlainText("she is waiting for the courier's answer")
        dialog.hand_button.click()
        qtbot.waitUntil(lambda: not actions.end_action.isEnabled(), timeout=10_000)

        mine = sam.shift_actions
        assert mine is not None
        begin = mine.start_shift()
        begin.name_edit.setText("Sam")
        begin.start_button.click()
        qtbot.waitUntil(lambda: mine.shift_start_dialog is not None, timeout=10_000)
        panel = mine.shift_start_dialog
        assert panel is not None
        texts = panel.handed_texts()
        assert texts[0] == f"Handed over to you by {agent} · she is waiting for the courier's answer"
        assert texts[1].strip().startswith(label)
    finally:
        alex.close()
        sam.close()


class Flaky:
    """The supervisor view of an in-memory team whose server can go away (``TeamUnavailable``, as the real one)."""

    def __init__(self, team: ShiftTeam) -> None:
        self.view = MemorySupervisor(team)
        self.down = False

    async def snapshot(self) -> Any:
        if self.down:
            raise TeamUnavailable("connection refused")
        return await self.view.snapshot()

    async def reassign(self, item_key: str, to: str | None, note: str = "") -> None:
        await self.view.reassign(item_key, to, note)

    async def release_stale(self, item_key: str) -> str | None:
        return await self.view.release_stale(item_key)


def test_offline_the_last_figures_stay_with_the_reason(qtbot: QtBot, qloop: qasync.QEventLoop) -> None:
    clock = FakeClock()
    team = ShiftTeam(clock, current=Status(member="Pat", role="supervisor"))
    team.claims.colleague(12, "Sam")
    port = Flaky(team)
    window = SupervisorWindow(port, clock, subscribe=team.subscribe, member="Pat")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: len(held_rows(window)) == 1, timeout=5000)
    port.down = True
    team.notify()  # a change arrives; the server does not answer the snapshot it asks for
    qtbot.waitUntil(lambda: window.status_text().startswith("The team database cannot be reached"), timeout=5000)
    assert window.status_text().endswith(
        f"connection refused. Showing the figures of {local_time(clock.now(), now=clock.now())}."
    )
    assert held_rows(window) == [["Mastodon · @brand · #12", "Sam", "0 s"]]  # kept, not blanked
