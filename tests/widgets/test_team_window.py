"""Team mode in the window (issue 22): claims in the list and the conversation, Send over a claim or offline,
Take next, the team line and File → Team….

Most tests drive the real window (real storage, real ReplyDesk) with ``MemoryTeam``, a small in-memory team that
satisfies the window's ports (widgets/claims.py) as ``TeamService`` does; the last test runs two members' real
runtimes on one real PostgreSQL schema.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import qasync
import sqlite_utils
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from console.model import MentionStatus
from console.ports import MemorySecretStore
from console.runtime import SandboxOptions
from console.team.applier import ApplyReport
from console.team.replicator import TeamChange
from console.team.service import TeamAdmin
from storage.db import DB_FILENAME, open_database
from storage.replies import ReplyRepo
from storage.settings import SettingsRepo
from storage.team_local import TeamLocalRepo
from storage.triage import TriageRepo
from tests.fakes.clock import FakeClock
from tests.team_pg import TeamPg
from tests.widgets.agent_app import AgentApp
from tests.widgets.factory import Factory
from tests.widgets.team_fake import Claim, MemorySetup, MemoryTeam, Status
from tests.widgets.test_composer import make_desk
from widgets.claims import banner_text, marker_text, team_line
from widgets.main_window import MainWindow
from widgets.queue_model import Col, Role
from widgets.team_dialog import AdminSetup, TeamDialog


@pytest.fixture
def team(clock: FakeClock) -> MemoryTeam:
    return MemoryTeam(clock)


def make_window(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock, tmp_path: Path, team: Any
) -> MainWindow:
    window = MainWindow(
        factory.service(), clock, settings=QSettings(f"{tmp_path}/w.ini", QSettings.Format.IniFormat),
        replies=make_desk(db, factory, clock), team=team,
    )  # fmt: skip
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def marker(window: MainWindow, mention_id: int) -> str:
    model = window.queue_model
    row = model.row_of(mention_id)
    assert row is not None
    return str(model.index(row, Col.PREVIEW).data(Role.CLAIM_LABEL))


# ---------------------------------------------------------------------------------------------------- words
def test_claim_words_say_who_and_how_long(clock: FakeClock) -> None:
    theirs = Claim(1, "Sam", clock.now() - 40, clock.now() + 50, False)
    ours = Claim(2, "Alex", clock.now() - 125, clock.now() + 50, True)
    assert marker_text(theirs, clock.now()) == "Sam · 40 s"
    assert marker_text(ours, clock.now()) == "You · 2 min"
    assert banner_text(theirs, clock.now()) == "Sam is replying · 40 s"
    assert banner_text(ours, clock.now()) == "You are replying · 2 min"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (Status(), "Team · live"),
        (Status(mode="polling", reason="notifications unavailable behind a pooler"),
         "Team · polling (notifications unavailable behind a pooler)"),
        (Status(mode="offline", to_push=3, conflicts=1),
         "Team · offline since {since}, 3 changes to send, 1 conflict to look at"),
    ],
)  # fmt: skip
def test_team_line_says_the_mode_and_what_waits(clock: FakeClock, status: Status, expected: str) -> None:
    from widgets.theme import local_time

    status = replace(status, since=clock.now() - 600)
    assert team_line(status, now=clock.now()) == expected.format(since=local_time(status.since, now=clock.now()))


# ---------------------------------------------------------------------------------------------------- the list
def test_queue_marker_shows_a_colleagues_claim_repainting_only_its_row(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock, tmp_path: Path, team: MemoryTeam
) -> None:
    ids = [factory.add(handle=f"c{n}") for n in range(5)]
    window = make_window(qtbot, db, factory, clock, tmp_path, team)
    model = window.queue_model
    assert all(marker(window, m) == "" for m in ids)
    changed: list[tuple[int, int, int, int]] = []
    model.dataChanged.connect(
        lambda top, bottom, _roles: changed.append((top.row(), bottom.row(), top.column(), bottom.column()))
    )
    team.claims.colleague(ids[2])
    qtbot.waitUntil(lambda: marker(window, ids[2]) == "Sam · 0 s", timeout=1000)
    row = model.row_of(ids[2])
    assert changed == [(row, row, Col.PREVIEW, Col.PREVIEW)]  # the affected row only, not the whole list
    index = model.index(row, Col.PREVIEW)
    assert str(index.data(Qt.ItemDataRole.ToolTipRole)).startswith("Sam is replying (0 s)")
    assert index.data(Role.CLAIM_OURS) is False
    clock.advance(40)
    window.queue_view.tick()
    assert marker(window, ids[2]) == "Sam · 40 s"
    assert all(marker(window, m) == "" for m in ids if m != ids[2])


def test_queue_tick_without_claims_still_touches_only_the_sla_column(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock, tmp_path: Path, team: MemoryTeam
) -> None:
    for n in range(3):
        factory.add(handle=f"c{n}")
    window = make_window(qtbot, db, factory, clock, tmp_path, team)
    columns: list[tuple[int, int]] = []
    window.queue_model.dataChanged.connect(lambda top, bottom, _r: columns.append((top.column(), bottom.column())))
    window.queue_view.tick()
    assert columns == [(Col.SLA, Col.SLA)]


def test_a_colleagues_change_applied_from_the_team_shows_in_the_list(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock, tmp_path: Path, team: MemoryTeam
) -> None:
    kept, resolved = factory.add(handle="ana"), factory.add(handle="bea")
    window = make_window(qtbot, db, factory, clock, tmp_path, team)
    assert window.queue_model.row_of(resolved) is not None
    # What the applier does with Sam's "resolved" event: through the repositories, then the team says which items.
    TriageRepo(db).set_status(resolved, MentionStatus.RESOLVED, at=int(clock.now()), actor="Sam")
    for listener in team.listeners:
        listener(TeamChange(report=ApplyReport(changed=(resolved,))))
    qtbot.waitUntil(lambda: window.queue_model.row_of(resolved) is None, timeout=1000)
    assert window.queue_model.row_of(kept) is not None and window.queue_size_text().startswith("1 open")


# ---------------------------------------------------------------------------------------------------- conversation
def test_banner_shows_the_claim_to_an_agent_who_opens_the_item_later(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock, tmp_path: Path, team: MemoryTeam
) -> None:
    first, second = factory.add(handle="ana"), factory.add(handle="bea")
    window = make_window(qtbot, db, factory, clock, tmp_path, team)
    window.queue_view.select_mention(first)
    banner = window.claim_banner
    assert banner is not None and banner.text() == ""
    team.claims.colleague(second)
    clock.advance(12)
    window.queue_view.select_mention(second)
    assert banner.text() == "Sam is replying · 12 s"
    clock.advance(3)
    window.queue_view.tick()
    assert banner.text() == "Sam is replying · 15 s"
    window.queue_view.select_mention(first)
    assert banner.text() == ""


# ---------------------------------------------------------------------------------------------------- composer
def test_composer_claims_on_open_renews_while_typing_and_releases_on_send(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock, tmp_path: Path, team: MemoryTeam,
    qloop: qasync.QEventLoop,
) -> None:  # fmt: skip
    head = factory.add()
    window = make_window(qtbot, db, factory, clock, tmp_path, team)
    composer = window.composer
    assert composer is not None and composer.mention_id == head
    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=2000)
    assert team.claims.claim_of(head) is None and composer.claimed is None  # looking at an item claims nothing
    composer.editor.setFocus(Qt.FocusReason.MouseFocusReason)
    qtbot.waitUntil(lambda: marker(window, head) == "You · 0 s", timeout=2000)
    banner = window.claim_banner
    assert banner is not None and banner.text() == "You are replying · 0 s"
    qtbot.keyClicks(composer.editor, "On it")
    assert team.claims.typed and set(team.claims.typed) == {head}
    qtbot.waitUntil(lambda: composer.claims_pending() == 0, timeout=1000)
    assert composer.send() is not None  # nobody else holds it, the team is live: no question
    assert team.claims.released == [head]
    qtbot.waitUntil(lambda: marker(window, head) == "", timeout=1000)
    assert banner.text() == ""


def test_composer_releases_when_the_agent_moves_to_another_item(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock, tmp_path: Path, team: MemoryTeam,
    qloop: qasync.QEventLoop,
) -> None:  # fmt: skip
    first, second = factory.add(handle="ana"), factory.add(handle="bea")
    window = make_window(qtbot, db, factory, clock, tmp_path, team)
    window.queue_view.select_mention(first)
    composer = window.composer
    assert composer is not None
    composer.claim_current()
    qtbot.waitUntil(lambda: team.claims.claim_of(first) is not None and composer.claims_pending() == 0, timeout=1000)
    composer.editor.setPlainText("Half a reply")
    window.queue_view.select_mention(second)
    assert team.claims.released == [first] and team.claims.claim_of(first) is None
    window.queue_view.select_mention(first)
    assert composer.text() == "Half a reply"  # cancel keeps the draft


def send_question(qtbot: QtBot, window: MainWindow) -> QMessageBox:
    composer = window.composer
    assert composer is not None
    qtbot.waitUntil(lambda: composer.team_question() is not None, timeout=1000)
    box = composer.team_question()
    assert box is not None
    return box


def click(box: QMessageBox, text: str) -> None:
    buttons = [b for b in box.buttons() if b.text() == text]
    assert buttons, f"no {text!r} in {[b.text() for b in box.buttons()]}"
    buttons[0].click()


def test_send_over_a_colleagues_claim_asks_first_and_cancel_keeps_the_draft(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock, tmp_path: Path, team: MemoryTeam
) -> None:
    head = factory.add()
    window = make_window(qtbot, db, factory, clock, tmp_path, team)
    composer = window.composer
    assert composer is not None
    team.claims.colleague(head)
    clock.advance(40)
    composer.editor.setPlainText("We are on it")
    assert composer.send() is None
    box = send_question(qtbot, window)
    assert box.text() == "Sam is replying to this customer (40 s). Send yours anyway?"
    click(box, "Cancel")
    assert composer.text() == "We are on it"
    assert ReplyRepo(db).for_mention(head) == []


def test_send_anyway_over_a_claim_queues_the_reply_marked_for_review(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock, tmp_path: Path, team: MemoryTeam
) -> None:
    head = factory.add()
    window = make_window(qtbot, db, factory, clock, tmp_path, team)
    composer = window.composer
    assert composer is not None
    team.claims.colleague(head)
    composer.editor.setPlainText("We are on it")
    composer.send()
    click(send_question(qtbot, window), "Send anyway")
    repo = ReplyRepo(db)
    replies = repo.for_mention(head)
    assert [r.text for r in replies] == ["We are on it"]
    assert repo.is_override(replies[0].id)
    assert repo.review_marks([replies[0].id]) == {replies[0].id: "Sent while Sam was replying"}
    assert composer.text() == ""


def test_offline_send_warns_and_send_anyway_queues_with_override(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock, tmp_path: Path, team: MemoryTeam
) -> None:
    head = factory.add()
    team.current = Status(mode="offline", since=clock.now() - 60, reason="the team server does not answer")
    window = make_window(qtbot, db, factory, clock, tmp_path, team)
    assert window.health_strip.team_text().startswith("Team · offline since")
    composer = window.composer
    assert composer is not None
    composer.editor.setPlainText("Sorry for the wait")
    composer.send()
    box = send_question(qtbot, window)
    assert box.text() == "You're offline from the team: a colleague may be answering. Send anyway?"
    click(box, "Send anyway")
    repo = ReplyRepo(db)
    replies = repo.for_mention(head)
    assert [r.text for r in replies] == ["Sorry for the wait"]
    assert repo.review_marks([replies[0].id]) == {replies[0].id: "Sent while offline from the team"}


def test_a_reply_the_team_refused_can_be_sent_anyway_and_is_marked_for_review(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock, tmp_path: Path, team: MemoryTeam
) -> None:
    head = factory.add()
    window = make_window(qtbot, db, factory, clock, tmp_path, team)
    composer = window.composer
    assert composer is not None and composer.mention_id == head
    composer.editor.setPlainText("Sorry for the wait, here is your tracking link.")
    reply_id = composer.send()
    assert reply_id is not None
    send_anyway = window.findChild(QPushButton, "teamSendAnyway")
    assert send_anyway is not None and not send_anyway.isVisible()  # queued, nothing stopped it
    # What the outbox does when the team's gate refuses it: Sam's reply was recorded first.
    repo = ReplyRepo(db)
    repo.mark_failed(reply_id, error="Sam answered this at 14:02; your reply was not sent.", at=int(clock.now()))
    composer.refresh_replies()
    assert send_anyway.isVisible()
    assert "Sam answered this at 14:02" in composer.reply_state_texts()[-1]
    send_anyway.click()
    assert repo.is_override(reply_id)
    assert repo.review_marks([reply_id]) == {
        reply_id: "Sent anyway after: Sam answered this at 14:02; your reply was not sent."
    }
    assert composer.reply_state_texts()[-1].startswith("Reply · Queued")
    assert not send_anyway.isVisible()


def test_solo_composer_never_offers_the_teams_send_anyway(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock, tmp_path: Path
) -> None:
    head = factory.add()
    window = make_window(qtbot, db, factory, clock, tmp_path, None)
    composer = window.composer
    assert composer is not None and composer.mention_id == head
    composer.editor.setPlainText("On it")
    reply_id = composer.send()
    assert reply_id is not None
    ReplyRepo(db).mark_failed(reply_id, error="The server refused the reply.", at=int(clock.now()))
    composer.refresh_replies()
    send_anyway = window.findChild(QPushButton, "teamSendAnyway")
    assert send_anyway is not None and not send_anyway.isVisible()
    assert window.findChild(QPushButton, "retryReply").isVisible()


# ---------------------------------------------------------------------------------------------------- take next
def test_take_next_opens_the_item_claimed_for_us_and_says_when_none_is_left(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock, tmp_path: Path, team: MemoryTeam,
    qloop: qasync.QEventLoop,
) -> None:  # fmt: skip
    first, second = factory.add(handle="ana"), factory.add(handle="bea")
    window = make_window(qtbot, db, factory, clock, tmp_path, team)
    window.queue_view.select_mention(first)
    team.claims.colleague(first)
    team.claims.queue = [first, second]
    assert window.take_next_action.shortcut().toString() == "Ctrl+N"
    window.take_next_action.trigger()
    qtbot.waitUntil(lambda: window.queue_view.selected_mention_id() == second, timeout=2000)
    composer = window.composer
    assert composer is not None and composer.claimed == second
    qtbot.waitUntil(lambda: marker(window, second) == "You · 0 s", timeout=1000)
    qtbot.waitUntil(lambda: composer.claims_pending() == 0, timeout=1000)
    window.take_next_action.trigger()
    qtbot.waitUntil(lambda: "Nothing left to take" in window.statusBar().currentMessage(), timeout=2000)
    assert window.queue_view.selected_mention_id() == second


# ---------------------------------------------------------------------------------------------------- solo
def test_solo_window_shows_only_file_team(
    qtbot: QtBot, db: sqlite_utils.Database, factory: Factory, clock: FakeClock, tmp_path: Path
) -> None:
    factory.add()
    window = make_window(qtbot, db, factory, clock, tmp_path, None)
    assert window.team_action.text() == "&Team…"
    assert not hasattr(window, "take_next_action")
    assert window.claim_banner is None
    assert window.health_strip.team_text() == ""
    assert window.queue_model.index(0, Col.PREVIEW).data(Role.CLAIM_LABEL) == ""


# ---------------------------------------------------------------------------------------------------- File → Team…
def make_dialog(qtbot: QtBot, setup: MemorySetup, clock: FakeClock) -> TeamDialog:
    dialog = TeamDialog(setup, clock, agent_name="Alex")
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_team_dialog_solo_says_how_to_start_and_a_bad_join_keeps_what_was_typed(
    qtbot: QtBot, clock: FakeClock, qloop: qasync.QEventLoop
) -> None:
    setup = MemorySetup()
    dialog = make_dialog(qtbot, setup, clock)
    assert not dialog.leave_button.isVisible()
    assert dialog.name_edit.text() == "Alex"
    dialog.join_button.click()
    assert dialog.message_text() == "Fill in the connection string first."
    dialog.dsn_edit.setText("postgresql://alex@office-pc/care")
    dialog.password_edit.setText("wrong")
    dialog.join_button.click()
    qtbot.waitUntil(lambda: "refused the password" in dialog.message_text(), timeout=2000)
    assert not dialog.is_busy() and dialog.join_button.isEnabled()
    assert dialog.dsn_edit.text() == "postgresql://alex@office-pc/care" and dialog.password_edit.text() == "wrong"
    assert setup.joined == []


def test_team_dialog_join_shows_the_status_and_forgets_the_typed_password(
    qtbot: QtBot, clock: FakeClock, qloop: qasync.QEventLoop
) -> None:
    setup = MemorySetup()
    dialog = make_dialog(qtbot, setup, clock)
    changed: list[bool] = []
    dialog.team_changed.connect(lambda: changed.append(True))
    dialog.dsn_edit.setText("postgresql://alex@office-pc/care")
    dialog.password_edit.setText("right")
    dialog.join_button.click()
    qtbot.waitUntil(lambda: dialog.message_text().startswith("You joined the team"), timeout=2000)
    assert setup.joined == [("postgresql://alex@office-pc/care", "Alex")] and changed == [True]
    assert dialog.password_edit.text() == ""
    assert dialog.field_text("member") == "Alex" and dialog.field_text("mode").startswith("Live since")
    qtbot.waitUntil(lambda: dialog.field_text("online") == "Sam, Robin", timeout=1000)
    assert dialog.leave_button.isVisible()


def test_team_dialog_host_gives_the_string_to_copy_and_owners_invite(
    qtbot: QtBot, clock: FakeClock, qloop: qasync.QEventLoop
) -> None:
    setup = MemorySetup()
    dialog = make_dialog(qtbot, setup, clock)
    dialog.host_button.click()
    qtbot.waitUntil(lambda: dialog.hosted_edit.text() != "", timeout=2000)
    assert dialog.hosted_edit.text().startswith("postgresql://alex@192.168.1.20")
    dialog.findChild(type(dialog.host_button), "teamCopyHosted").click()
    from PySide6.QtGui import QGuiApplication

    assert QGuiApplication.clipboard().text() == dialog.hosted_edit.text()
    dialog.invite_name_edit.setText("Sam")
    dialog.invite_role.setCurrentIndex(1)
    dialog.invite_button.click()
    qtbot.waitUntil(lambda: dialog.invited_edit.text() != "", timeout=2000)
    assert setup.invited == [("Sam", "supervisor")]
    assert "Give Sam this connection string" in dialog.message_text()


def test_team_dialog_leave_asks_first(qtbot: QtBot, clock: FakeClock, qloop: qasync.QEventLoop) -> None:
    setup = MemorySetup(current=Status())
    dialog = make_dialog(qtbot, setup, clock)
    dialog.leave_button.click()
    box = dialog.findChild(QMessageBox, "teamLeaveQuestion")
    assert box is not None and box.isVisible()
    click(box, "Stay")
    assert setup.current is not None
    dialog.leave_button.click()
    boxes = [b for b in dialog.findChildren(QMessageBox, "teamLeaveQuestion") if b.isVisible()]
    click(boxes[-1], "Leave")
    qtbot.waitUntil(lambda: setup.current is None and "You left the team" in dialog.message_text(), timeout=2000)
    assert not dialog.leave_button.isVisible()


# ---------------------------------------------------------------------------------------------------- real server
def admin_on(folder: Path, clock: FakeClock) -> TeamAdmin:
    folder.mkdir(parents=True, exist_ok=True)
    db = open_database(folder / DB_FILENAME)
    return TeamAdmin(folder, SettingsRepo(db), MemorySecretStore(), TeamLocalRepo(db), clock)


def test_team_dialog_on_a_real_server_invites_and_joins_and_says_why_not(
    qtbot: QtBot, team_pg: TeamPg, tmp_path: Path, clock: FakeClock, arun: Any
) -> None:
    owner = admin_on(tmp_path / "owner", clock)
    arun(owner.init(f"{team_pg.conninfo} schema={team_pg.schema}", "unused-with-trust", "Alex"), timeout=20)
    owner_dialog = TeamDialog(AdminSetup(owner, lambda: None, clock), clock)
    qtbot.addWidget(owner_dialog)
    owner_dialog.show()
    assert owner_dialog.field_text("role") == "Owner"
    assert owner_dialog.field_text("mode").startswith("Connecting since")  # joined now: starts with the app
    sam = f"{team_pg.role_prefix}sam"
    owner_dialog.invite_name_edit.setText(sam)
    owner_dialog.invite_button.click()
    qtbot.waitUntil(lambda: owner_dialog.invited_edit.text() != "", timeout=20_000)
    invitation = owner_dialog.invited_edit.text()
    assert invitation.startswith("postgresql://") and f"schema={team_pg.schema}" in invitation

    member = admin_on(tmp_path / "member", clock)
    dialog = TeamDialog(AdminSetup(member, lambda: None, clock), clock)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.field_text("member") == "" and not dialog.leave_button.isVisible()
    wrong = invitation.replace(f"schema={team_pg.schema}", f"schema={team_pg.schema}_none")
    dialog.dsn_edit.setText(wrong)
    dialog.join_button.click()
    qtbot.waitUntil(lambda: not dialog.is_busy() and dialog.message_text() != "", timeout=20_000)
    assert dialog.message_text().startswith("There is no team database in schema"), dialog.message_text()
    assert dialog.dsn_edit.text() == wrong  # nothing lost: correct it and try again
    dialog.dsn_edit.setText(invitation)
    dialog.join_button.click()
    qtbot.waitUntil(lambda: dialog.message_text().startswith("You joined the team"), timeout=20_000)
    assert f"as {sam}" in dialog.message_text()
    assert dialog.field_text("member") == sam and dialog.field_text("role") == "Agent"
    qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=20_000)


def head_with(app: AgentApp, external_id: str) -> int | None:
    """The local id of the queue item whose message has ``external_id`` (ids differ from copy to copy)."""
    model = app.win.queue_model
    for row in range(model.rowCount()):
        mention = model.mention_at(row)
        if mention is not None and mention.external_id == external_id:
            return mention.id
    return None


def test_two_members_on_one_postgresql_see_each_others_claim_in_the_list(
    qtbot: QtBot, qloop: qasync.QEventLoop, team_pg: TeamPg, tmp_path: Path
) -> None:
    """Sam's machine syncs the sandbox and shares the queue; Alex joins from another data folder with Sam's
    invitation. When Sam opens the reply box on an item, Alex's list says "Sam" (polled, within a second) and so
    does the conversation; when Sam sends, the marker goes."""
    clock = FakeClock()
    sam = AgentApp(tmp_path / "sam", clock, qtbot, qloop, secrets=MemorySecretStore(),
                   sandbox=SandboxOptions(rate_per_minute=0.0, backlog=4, seed=5))  # fmt: skip
    alex = AgentApp(tmp_path / "alex", clock, qtbot, qloop, secrets=MemorySecretStore(),
                    sandbox=SandboxOptions(rate_per_minute=0.0, backlog=0, seed=6))  # fmt: skip
    try:
        sam.open()
        sam.run(sam.rt.team_admin().init(f"{team_pg.conninfo} schema={team_pg.schema}", "trust", "Sam"), 20)
        invitation = sam.run(sam.rt.team_admin().invite(f"{team_pg.role_prefix}alex", "agent"), 20)
        sam.restart()  # a team joined takes effect at the next start
        assert sam.rt.team is not None
        sam.rt.start_team()
        sam.sync()
        alex.open()
        alex.run(alex.rt.team_admin().join(invitation.connection_string, None, ""), 20)
        alex.restart()
        assert alex.rt.team is not None
        alex.rt.start_team()

        first = sam.win.queue_model.mention_at(0)
        assert first is not None
        # Alex's copy catches up with the shared queue (the window reloads what the team applied).
        qtbot.waitUntil(lambda: head_with(alex, first.external_id) is not None, timeout=20_000)
        theirs = head_with(alex, first.external_id)
        assert theirs is not None
        assert marker(alex.win, theirs) == ""
        alex.win.queue_view.select_mention(theirs)

        composer = sam.win.composer
        assert composer is not None
        sam.win.queue_view.select_mention(first.id)
        sam.focus(composer.editor)  # Sam opens the reply box: the item is claimed on the server
        qtbot.waitUntil(lambda: marker(alex.win, theirs).startswith("Sam · "), timeout=1000)
        qtbot.waitUntil(lambda: marker(sam.win, first.id).startswith("You · "), timeout=5000)
        banner = alex.win.claim_banner
        assert banner is not None and banner.text().startswith("Sam is replying · ")
        assert alex.win.health_strip.team_text().startswith("Team · ")

        sam.keys(composer.editor, "Thanks, we are on it.")
        assert composer.send() is not None
        qtbot.waitUntil(lambda: marker(alex.win, theirs) == "" and banner.text() == "", timeout=5000)
    finally:
        alex.close()
        sam.close()
