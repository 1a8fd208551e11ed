"""The README's promises, end to end in the real window, one journey per test (issue 19, "The robot").

Each journey walks ``AgentApp`` (main.py's wiring on a data folder, a FakeClock, the embedded sandbox) the way an
agent does, and checks what an agent relies on (``check_invariants``) at every stage.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import qasync
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QListWidget
from pytestqt.qtbot import QtBot

from console.reports.export.service import Format
from console.runtime import SandboxOptions
from storage.rows import ReplyState
from tests.fakes.clock import FakeClock
from tests.widgets.agent_app import AgentApp, check_invariants
from widgets.export_dialog import ExportDialog
from widgets.manual_intake import ManualIntakeDialog
from widgets.welcome import Tour, WelcomeDialog

AGENT = "Robin"


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock, qtbot: QtBot, qloop: qasync.QEventLoop) -> Iterator[AgentApp]:
    agent_app = AgentApp(
        tmp_path / "data", clock, qtbot, qloop, sandbox=SandboxOptions(rate_per_minute=0.0, backlog=6, seed=3)
    )
    try:
        yield agent_app
    finally:
        agent_app.close()


def select(app: AgentApp, row: int) -> int:
    """Click a row of the queue, as the agent does; returns its item id."""
    view, model = app.win.queue_view, app.win.queue_model
    index = model.index(row, 0)
    view.scrollTo(index)
    app.qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(index).center())
    mention_id = view.selected_mention_id()
    assert mention_id is not None
    return mention_id


def write_and_send(app: AgentApp, text: str) -> None:
    composer = app.win.composer
    assert composer is not None
    app.keys(composer.editor, text)
    app.key(composer.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)


def choose_reply(app: AgentApp, index: int = -1) -> None:
    """Select a reply in the composer's outbox list (the newest by default)."""
    states = app.win.findChild(QListWidget, "replyStates")
    assert states is not None and states.count() > 0
    states.setCurrentRow(index % states.count())


def press(app: AgentApp, key: str) -> None:
    app.keys(app.win.queue_view, key)


def statuses_on_sandbox(app: AgentApp) -> list[str]:
    assert app.rt.sandbox is not None
    return [str(s["id"]) for s in app.rt.sandbox.statuses_posted()]


def test_journey_first_run_to_the_supervisors_review_with_a_restart_in_the_middle(
    app: AgentApp, clock: FakeClock, tmp_path: Path
) -> None:
    # First run: the welcome asks the name, then where customers write: the sandbox; the tour follows.
    window = app.open(welcome=True)
    welcome = window.findChild(WelcomeDialog)
    assert welcome is not None and welcome.isVisible()
    app.qtbot.keyClicks(welcome.name_edit, AGENT)
    welcome.next_button.click()
    welcome.sandbox_button.click()
    app.settle()
    tours = window.findChildren(Tour)
    assert tours, "the tour starts after the welcome"
    tours[-1].skip_button.click()
    app.sync()
    assert app.win.queue_model.rowCount() == 6
    check_invariants(app)

    # Start the shift (the welcome's name is remembered), then reply with the greeting template.
    actions = app.shift_actions
    assert actions is not None
    start = actions.start_shift()
    assert start.name_edit.text() == AGENT
    start.start_button.click()
    first = select(app, 0)
    composer = app.win.composer
    assert composer is not None
    composer.open_picker()
    results = app.win.findChild(QListWidget, "templateResults")
    assert results is not None
    greeting = next(results.item(i) for i in range(results.count()) if "Greeting" in results.item(i).text())
    results.itemActivated.emit(greeting)
    assert f"I'm {AGENT}" in composer.text(), "the welcome's name signs the template at once (issue 19 #11)"
    app.key(composer.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    clock.advance(30)
    app.drain()
    assert any(t.startswith("Reply · Sent") for t in composer.reply_state_texts()), composer.reply_state_texts()
    assert len(statuses_on_sandbox(app)) == 1
    check_invariants(app)

    # Resolve it (E); the Net Easy prompt offers the survey, which leaves privately through the outbox.
    press(app, "E")
    panel = app.win.survey_panel
    assert app.rt.queue.rows_by_id([first])[first].status == "resolved"
    assert panel is not None and panel.prompt_visible()
    panel.prompt_buttons()[0].click()
    app.qtbot.waitUntil(lambda: panel.pending() == 0)
    app.drain()
    assert app.rt.sandbox is not None
    posted = app.rt.sandbox.statuses_posted()
    assert len(posted) == 2 and posted[-1]["visibility"] == "direct"
    check_invariants(app)

    # Restart in the middle of the shift: same queue, same shift, the sandbox remembers its posts.
    open_before = app.rt.queue.open_count()
    clock.advance(5 * 60)
    app.restart()
    app.sync()
    assert app.rt.queue.open_count() == open_before, "a restart does not seed the backlog again (issue 19 #6)"
    assert app.rt.shifts is not None and app.rt.shifts.current() is not None
    check_invariants(app)
    second = select(app, 0)
    assert second != first
    write_and_send(app, "Sorry for the wait! Could you send us your order number in a direct message?")
    clock.advance(30)
    app.drain()
    assert len(statuses_on_sandbox(app)) == 3, "a reply to an item from before the restart reaches its post"
    check_invariants(app)

    # The customer answers the survey; the next sync reads the answer.
    app.rt.sandbox.simulate_follow_ups(force=True)
    clock.advance(10 * 60)
    app.sync()
    app.tick()
    check_invariants(app)

    # End of shift: notes, then the summary saved in all five formats.
    actions = app.shift_actions
    assert actions is not None
    end = actions.end_shift()
    end.notes_edit.setPlainText("Watch the order number thread.")
    end.end_button.click()
    app.settle()
    dialogs = [d for d in app.win.findChildren(ExportDialog) if d.isVisible()]
    assert dialogs, "ending the shift leads on to saving its summary"
    export = dialogs[-1]
    out = tmp_path / "exports"
    out.mkdir()
    written: dict[Format, Path] = {}
    for fmt in (Format.JSON, Format.CSV, Format.XLSX, Format.HTML, Format.PDF):
        export.format_box.setCurrentIndex(export.format_box.findData(fmt.value))
        export.path_edit.setText(str(out / f"shift-1.{fmt.value}"))
        export.save_button.click()
        task = export.task
        assert task is not None
        app.qtbot.waitUntil(lambda t=task: t.done() and export.save_button.isEnabled(), timeout=30_000)
        written[fmt] = task.result()
        assert written[fmt].suffix == f".{fmt.value}"
        assert written[fmt].stat().st_size > 0
    summary = json.loads(written[Format.JSON].read_text(encoding="utf-8"))
    assert summary["shift"]["agent"] == AGENT
    assert summary["shift"]["notes"] == "Watch the order number thread."
    assert summary["counts"]["resolved"] >= 1
    assert written[Format.PDF].read_bytes().startswith(b"%PDF")
    assert written[Format.XLSX].read_bytes().startswith(b"PK")
    export.close()
    check_invariants(app)

    # A second shift, then the supervisor merges both summaries in the review window.
    clock.advance(60 * 60)
    actions.start_shift().start_button.click()
    select(app, 0)
    write_and_send(app, "Thanks for your patience, this is sorted now.")
    clock.advance(30)
    app.drain()
    second_json = out / "shift-2.json"
    actions.end_shift().end_button.click()
    app.settle()
    export = [d for d in app.win.findChildren(ExportDialog) if d.isVisible()][-1]
    export.format_box.setCurrentIndex(export.format_box.findData(Format.JSON.value))
    export.path_edit.setText(str(second_json))
    export.save_button.click()
    assert export.task is not None
    app.qtbot.waitUntil(export.task.done, timeout=30_000)
    export.close()
    review = actions.open_review()
    with app.qtbot.waitSignal(review.loaded, timeout=30_000):
        review.load_files([written[Format.JSON], second_json])
    assert len(review.review.summaries) == 2 and not review.review.problems
    assert review.message_state().value == "ok", review.messages.text()
    with app.qtbot.waitSignal(review.exported, timeout=30_000):
        merged = review.export_to(tmp_path / "review.pdf")
    assert merged.result().read_bytes().startswith(b"%PDF")
    assert review.message_state().value == "ok", review.messages.text()
    review.close()
    check_invariants(app)


def test_journey_a_post_added_by_hand_from_intake_to_sent(app: AgentApp, clock: FakeClock) -> None:
    app.open()
    app.sync()
    app.win.manual_intake_action.trigger()
    dialog = next(d for d in app.win.findChildren(ManualIntakeDialog) if d.isVisible())
    link = "https://x.com/hannah/status/1888000000000000001"
    dialog.link.setText(link)
    app.qtbot.keyClicks(dialog.text, "@care my parcel never came, order 4411")
    dialog.add_button.click()
    assert "Added to the queue" in dialog.status.text()
    dialog.close()
    app.settle()
    check_invariants(app)

    # The item is in the queue with its deadlines; the agent writes the reply.
    rows = app.rt.queue.rows_by_id(app.rt.queue.queue_ids())
    (manual_id,) = [i for i, row in rows.items() if row.url == link]
    assert app.win.queue_view.select_mention(manual_id)
    app.settle()
    write_and_send(app, "Sorry about that! I've asked the courier and will update you within the hour.")
    app.drain()
    composer = app.win.composer
    assert composer is not None
    assert any("To send by hand" in t for t in composer.reply_state_texts()), composer.reply_state_texts()
    assert app.win.outbox_status_text() == "" or "waiting" in app.win.outbox_status_text()

    # A restart keeps the sandbox and the hand-off (issue 19 #3).
    app.restart()
    app.sync()
    assert app.rt.sandbox is not None, "the sandbox still starts after a post was added by hand"
    assert app.win.sync_status_text() != "Not synced yet"
    assert app.win.queue_view.select_mention(manual_id)
    app.settle()
    composer = app.win.composer
    assert composer is not None

    # Copy the reply, open the post in the browser, then mark it sent.
    opened: list[QUrl] = []
    composer.open_url = opened.append
    choose_reply(app)
    copy = app.button("Copy reply", composer)
    assert copy is not None
    copy.click()
    assert "parcel" not in QGuiApplication.clipboard().text() and "courier" in QGuiApplication.clipboard().text()
    open_post = app.button("Open post", composer)
    assert open_post is not None
    open_post.click()
    assert [u.toString() for u in opened] == [link]
    clock.advance(60)
    mark = app.button("Mark as sent", composer)
    assert mark is not None
    mark.click()
    app.settle()
    assert app.rt.replies is not None
    (reply,) = [r for r in app.rt.replies.outbox.replies(manual_id) if r.purpose == "reply"]
    assert reply.state is ReplyState.SENT
    assert any(t.startswith("Reply · Sent") for t in composer.reply_state_texts())
    first_response = [d for d in app.rt.queue.deadlines(manual_id) if d.kind.value == "first_response"]
    assert first_response and first_response[0].met_at == int(clock.now())
    assert app.win.outbox_status_text() == ""
    check_invariants(app)


def test_journey_an_account_whose_token_expires_mid_shift(app: AgentApp, clock: FakeClock) -> None:
    app.open()
    app.sync()
    assert app.shift_actions is not None
    app.shift_actions.start_shift().start_button.click()
    sandbox = app.rt.sandbox
    assert sandbox is not None
    account_id = next(iter(app.rt.connectors))

    # Mid-shift the token is revoked: the sync says so, the health strip offers "Sign in again".
    clock.advance(15 * 60)
    sandbox.revoke_token()
    sandbox.generate(2)
    app.sync()
    app.tick()
    assert not app.win.sync_status_ok()
    assert "sign" in app.win.health_strip.chip_text(account_id).lower()
    reauth = app.win.health_strip.reauth_button(account_id)
    assert reauth.isVisible()

    # A reply written meanwhile waits with the reason, and nothing is lost.
    select(app, 0)
    write_and_send(app, "Thanks for waiting, we are on it.")
    app.drain()
    composer = app.win.composer
    assert composer is not None
    assert any("Waiting to send" in t for t in composer.reply_state_texts()), composer.reply_state_texts()
    assert "1 reply waiting" in app.win.outbox_status_text()
    assert statuses_on_sandbox(app) == []
    check_invariants(app)

    # Sign in again: the waiting reply leaves, the new mentions arrive, the strip clears.
    reauth.click()
    app.qtbot.waitUntil(lambda: "sign" not in app.win.health_strip.chip_text(account_id).lower(), timeout=10_000)
    app.drain()
    app.sync()
    assert any(t.startswith("Reply · Sent") for t in composer.reply_state_texts()), composer.reply_state_texts()
    assert len(statuses_on_sandbox(app)) == 1
    assert app.win.sync_status_ok(), app.win.sync_status_text()
    assert app.win.outbox_status_text() == ""
    assert app.rt.queue.open_count() == 6 + 2
    check_invariants(app)
