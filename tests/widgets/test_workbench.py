"""The queue workbench: views, filter chips, search with highlights, one-key triage with undo, help, tags."""

from __future__ import annotations

import pytest
import sqlite_utils
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QApplication, QLabel, QStyleOptionViewItem
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from console.keymap import KEY_OVERRIDES, KeyMap
from console.queue import QueueQuery, QueueService, QueueView
from console.sla.alerts import AlertMonitor
from console.triage import Triage
from storage.rows import MentionKind, MentionStatus
from storage.settings import SettingsRepo
from storage.triage import TriageRepo
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from widgets.filter_bar import FilterKey
from widgets.main_window import MainWindow
from widgets.queue_delegates import HighlightDelegate, match_spans
from widgets.queue_model import Col, QueueModel, Role
from widgets.triage_actions import TriageCommand


@pytest.fixture
def items(factory: Factory, clock: FakeClock) -> dict[str, int]:
    now = clock.now()
    return {
        "parcel": factory.add(text="Where is my parcel?", handle="ana", name="Ana", posted_at=now - 600),
        "refund": factory.add(
            text="Refund please", handle="bo", name="Bo", posted_at=now - 300, kind=MentionKind.DIRECT
        ),
        "crash": factory.add(text="App crashes on start", handle="cy", name="Cy", posted_at=now - 60),
    }


@pytest.fixture
def triage(db: sqlite_utils.Database, clock: FakeClock) -> Triage:
    return Triage(TriageRepo(db), clock, actor=lambda: "Sam")


@pytest.fixture
def window(qtbot: QtBot, service: QueueService, clock: FakeClock, triage: Triage, items: dict[str, int]) -> MainWindow:
    win = MainWindow(service, clock, triage=triage, alerts=AlertMonitor(service, clock))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    win.queue_view.setFocus()
    return win


def heading(window: MainWindow, name: str) -> str:
    """The text of a label in the queue panel's heading, found as a style sheet finds it: by object name."""
    label = window.findChild(QLabel, name)
    assert label is not None
    return label.text()


def ids(model: QueueModel) -> list[int]:
    return [model.index(r, 0).data(Role.MENTION_ID) for r in range(model.rowCount())]


def press(qtbot: QtBot, window: MainWindow, key: str | Qt.Key, modifier: Qt.KeyboardModifier | None = None) -> None:
    window.queue_view.setFocus()
    qtbot.waitUntil(window.queue_view.hasFocus)
    if modifier is None:
        qtbot.keyClick(window.queue_view, key)
    else:
        qtbot.keyClick(window.queue_view, key, modifier)


# ---------------------------------------------------------------------------------------------- views and filters
@pytest.mark.parametrize(
    ("view", "expected"),
    [
        (QueueView.OPEN, ["parcel"]),
        (QueueView.BREACHED, []),
        (QueueView.WAITING, ["refund"]),
        (QueueView.FOLLOW_UPS, []),
        (QueueView.RESOLVED_TODAY, ["crash"]),
        (QueueView.ALL, ["crash", "refund", "parcel"]),
    ],
)
def test_workbench_each_view(
    qtbot: QtBot, window: MainWindow, triage: Triage, items: dict[str, int], view: QueueView, expected: list[str]
) -> None:
    triage.set_status(items["refund"], MentionStatus.WAITING)
    triage.set_status(items["crash"], MentionStatus.RESOLVED)
    bar = window.workbench.filter_bar
    with qtbot.waitSignal(bar.query_changed):
        bar.view_actions[view].trigger()
    assert ids(window.queue_model) == [items[name] for name in expected]
    assert bar.tab_bar().currentIndex() == list(QueueView).index(view)
    assert heading(window, "panelTitle") == bar.view_actions[view].text()


def test_workbench_view_shortcut_switches_view(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.keyClick(window.queue_view, Qt.Key.Key_6, Qt.KeyboardModifier.ControlModifier)
    assert window.workbench.query.view is QueueView.ALL
    assert window.queue_size_text() == "3 in All"


@pytest.mark.parametrize(
    ("key", "value", "chip", "expected"),
    [
        (FilterKey.KIND, MentionKind.DIRECT.value, "Direct message", ["refund"]),
        (FilterKey.PRIORITY, 2, "Priority: Normal", ["parcel", "refund", "crash"]),
        (FilterKey.CHANNEL, "mastodon", "Channel: Mastodon", ["parcel", "refund", "crash"]),
        (FilterKey.NEWCOMER, False, "Returning customer", []),
        (FilterKey.TAG, "billing", "Tag: billing", ["refund"]),
    ],
)
def test_workbench_filter_chip_filters_and_removes(
    qtbot: QtBot, window: MainWindow, triage: Triage, items: dict[str, int], key: FilterKey, value: object,
    chip: str, expected: list[str],
) -> None:  # fmt: skip
    triage.set_tags(items["refund"], ["billing"])
    bar = window.workbench.filter_bar
    bar.add_filter(key, value)
    assert bar.chip_texts() == [chip]
    assert ids(window.queue_model) == [items[name] for name in expected]
    (widget,) = bar.chip_widgets()
    with qtbot.waitSignal(bar.query_changed):
        qtbot.mouseClick(widget.remove_button, Qt.MouseButton.LeftButton)
    assert bar.chip_texts() == []
    assert len(ids(window.queue_model)) == 3


def test_workbench_account_chip_and_menu(window: MainWindow, factory: Factory) -> None:
    bar = window.workbench.filter_bar
    menu = bar.menu()
    titles = [a.text() for a in menu.actions()]
    assert titles[:6] == ["Channel", "Account", "Priority", "Tag", "Kind", "Newcomer"]
    account_menu = menu.actions()[1].menu()
    assert account_menu is not None
    (account_action,) = account_menu.actions()  # type: ignore[attr-defined]
    account_action.trigger()
    assert bar.chip_texts() == ["Account: @care"]
    bar.clear_filters()
    assert bar.chip_texts() == []


# ---------------------------------------------------------------------------------------------- search
def test_workbench_search_filters_and_highlights(qtbot: QtBot, window: MainWindow, items: dict[str, int]) -> None:
    box = window.workbench.filter_bar.search_box
    with qtbot.waitSignal(window.workbench.filter_bar.query_changed, timeout=2000):
        qtbot.keyClicks(box, "refu")
    assert ids(window.queue_model) == [items["refund"]]
    index = window.queue_model.index(0, Col.PREVIEW)
    assert index.data(Role.HIGHLIGHT) == ("refu",)
    assert match_spans(index.data(), ("refu",)) == [(0, 6)]
    assert "refu" in heading(window, "panelHint")
    image = QImage(400, 32, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    option = QStyleOptionViewItem()
    option.rect = image.rect()
    option.font = QApplication.font()
    HighlightDelegate().paint(painter, option, index)
    painter.end()
    qtbot.keyClick(box, Qt.Key.Key_Escape)
    assert box.text() == ""
    assert len(ids(window.queue_model)) == 3
    assert window.queue_view.hasFocus() or window.focusWidget() is window.queue_view


def test_workbench_slash_focuses_search(qtbot: QtBot, window: MainWindow) -> None:
    press(qtbot, window, "/")
    qtbot.waitUntil(window.workbench.filter_bar.search_box.hasFocus)


@pytest.mark.parametrize(
    ("text", "terms", "spans"),
    [("Refund please", ("refu",), [(0, 6)]), ("a b", (), []), ("parcel, Parcel!", ("parcel",), [(0, 6), (8, 14)])],
)
def test_match_spans(text: str, terms: tuple[str, ...], spans: list[tuple[int, int]]) -> None:
    assert match_spans(text, terms) == spans


# ---------------------------------------------------------------------------------------------- triage keys
def test_workbench_resolve_key_removes_item_and_undo_restores(
    qtbot: QtBot, window: MainWindow, items: dict[str, int], service: QueueService
) -> None:
    assert window.queue_view.selected_mention_id() == items["parcel"]
    press(qtbot, window, "e")
    press(qtbot, window, "e")  # nothing was sent to @ana: the second press confirms
    assert service.rows_by_id([items["parcel"]])[items["parcel"]].status is MentionStatus.RESOLVED
    assert ids(window.queue_model) == [items["refund"], items["crash"]]
    assert window.queue_view.selected_mention_id() == items["refund"]  # the next item takes its place
    assert "Resolved" in window.statusBar().currentMessage()
    press(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert service.rows_by_id([items["parcel"]])[items["parcel"]].status is MentionStatus.NEW
    assert ids(window.queue_model)[0] == items["parcel"]
    assert window.queue_view.selected_mention_id() == items["parcel"]


def test_workbench_resolving_an_unanswered_item_asks_for_the_key_again(
    qtbot: QtBot, window: MainWindow, items: dict[str, int], service: QueueService
) -> None:
    """Issue 19 #4: a stray "e" does not close an item nobody answered; it says why and waits for a second "e"."""
    press(qtbot, window, "e")
    assert service.rows_by_id([items["parcel"]])[items["parcel"]].status is MentionStatus.NEW
    message = window.statusBar().currentMessage()
    assert "No reply was sent to @ana yet" in message and "again" in message
    press(qtbot, window, "j")  # moving on forgets the question
    press(qtbot, window, "k")
    press(qtbot, window, "e")
    assert service.rows_by_id([items["parcel"]])[items["parcel"]].status is MentionStatus.NEW
    press(qtbot, window, "e")
    assert service.rows_by_id([items["parcel"]])[items["parcel"]].status is MentionStatus.RESOLVED


@pytest.mark.parametrize(
    ("key", "status"),
    [("w", MentionStatus.WAITING), ("c", MentionStatus.COMMUNITY), ("!", MentionStatus.SPAM),
     ("o", MentionStatus.OPEN)],
)  # fmt: skip
def test_workbench_status_keys(
    qtbot: QtBot, window: MainWindow, items: dict[str, int], service: QueueService, key: str, status: MentionStatus
) -> None:
    press(qtbot, window, key)
    if status is MentionStatus.COMMUNITY:
        press(qtbot, window, key)  # closing an unanswered item takes the key twice
    assert service.rows_by_id([items["parcel"]])[items["parcel"]].status is status
    history = [e.kind for e in service.history(items["parcel"])]
    assert history[-1] == "status_changed"


def test_workbench_priority_key_and_history_actor(
    qtbot: QtBot, window: MainWindow, items: dict[str, int], service: QueueService
) -> None:
    press(qtbot, window, "1")
    row = service.rows_by_id([items["parcel"]])[items["parcel"]]
    assert row.priority == 1
    event = service.history(items["parcel"])[-1]
    assert (event.kind, event.actor) == ("priority_changed", "Sam")
    assert window.queue_model.index(0, 0).data(Role.PRIORITY) == 1


def test_workbench_keys_do_nothing_while_typing_in_search(
    qtbot: QtBot, window: MainWindow, items: dict[str, int], service: QueueService
) -> None:
    box = window.workbench.filter_bar.search_box
    box.setFocus()
    qtbot.waitUntil(box.hasFocus)
    qtbot.keyClicks(box, "e")
    assert service.rows_by_id([items["parcel"]])[items["parcel"]].status is MentionStatus.NEW


def test_workbench_j_and_k_move_through_the_queue(qtbot: QtBot, window: MainWindow, items: dict[str, int]) -> None:
    press(qtbot, window, "j")
    assert window.queue_view.selected_mention_id() == items["refund"]
    press(qtbot, window, "j")
    press(qtbot, window, "j")
    assert window.queue_view.selected_mention_id() == items["crash"]
    press(qtbot, window, "k")
    assert window.queue_view.selected_mention_id() == items["refund"]
    assert window.conversation.mention_id == items["refund"]


def test_workbench_tag_editor_completes_and_sets_tags(
    qtbot: QtBot, window: MainWindow, triage: Triage, items: dict[str, int], service: QueueService
) -> None:
    triage.set_tags(items["crash"], ["billing", "bug"])
    press(qtbot, window, "t")
    editor = window.workbench.tag_editor()
    assert editor is not None
    qtbot.keyClicks(editor.line_edit, "bi")
    assert editor.line_edit.completer_model().stringList() == ["billing"]
    editor.line_edit.complete_with("billing")
    qtbot.keyClicks(editor.line_edit, "Late Delivery")
    editor.accept()
    assert service.rows_by_id([items["parcel"]])[items["parcel"]].tags == "billing,late-delivery"
    assert window.queue_model.index(0, Col.TAGS).data() == "billing, late-delivery"


def test_workbench_help_lists_shortcuts(qtbot: QtBot, window: MainWindow) -> None:
    press(qtbot, window, "?")
    dialog = window.workbench.help_dialog()
    assert dialog is not None
    rows = dialog.rows()
    assert ("Item", "Resolve", "E") in rows
    assert any(r[1] == "Next item" and r[2] == "J" for r in rows)
    assert any(r[1] == "Open" and r[2] == "Ctrl+1" for r in rows)
    assert any(r[1] == "Keyboard shortcuts" and r[2] == "F1" for r in rows)


def test_workbench_undo_action_names_the_change(qtbot: QtBot, window: MainWindow) -> None:
    actions = window.workbench.triage_actions
    assert actions is not None
    undo = actions.actions[TriageCommand.UNDO]
    assert not undo.isEnabled()
    press(qtbot, window, "w")
    assert undo.isEnabled()
    assert undo.text() == "Undo Status: New → Waiting on customer"


def test_workbench_main_controls_have_accessible_names(window: MainWindow) -> None:
    assert window.queue_view.accessibleName() == "Queue"
    assert window.workbench.filter_bar.search_box.accessibleName() == "Search the queue"
    assert window.workbench.filter_bar.tab_bar().accessibleName() == "Queue views"


# ---------------------------------------------------------------------------------------------- model paging
def test_queue_model_pages_and_switches_query(
    qtmodeltester: ModelTester, factory: Factory, service: QueueService, clock: FakeClock
) -> None:
    factory.many(25)
    model = QueueModel(service, clock, batch_size=5, cache_size=20, page_size=10)
    model.reload()
    assert model.rowCount() == 10
    assert model.canFetchMore()
    qtmodeltester.check(model, force_py=True)
    model.fetchMore()
    model.fetchMore()
    assert model.rowCount() == 25
    assert not model.canFetchMore()
    assert ids(model) == service.queue_ids(QueueQuery())
    model.set_query(QueueQuery(view=QueueView.ALL, search="number"))
    assert model.rowCount() == 10
    assert model.index(0, Col.PREVIEW).data(Role.HIGHLIGHT) == ("number",)
    model.set_query(QueueQuery(view=QueueView.WAITING))
    assert model.rowCount() == 0


# ---------------------------------------------------------------------------------------------- editable shortcuts
def test_workbench_shortcut_edited_in_cheat_sheet_is_used_and_saved(
    qtbot: QtBot, service: QueueService, clock: FakeClock, triage: Triage, items: dict[str, int],
    db: sqlite_utils.Database,
) -> None:  # fmt: skip
    keymap = KeyMap(SettingsRepo(db))
    win = MainWindow(service, clock, triage=triage, keymap=keymap)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.workbench.show_help()
    dialog = win.workbench.help_dialog()
    assert dialog is not None
    row = next(i for i, r in enumerate(dialog.rows()) if r[1] == "Resolve")
    assert dialog.set_keys(row, "J") is not None  # taken by "Next item"
    assert "already the shortcut" in dialog.message.text()
    assert dialog.set_keys(row, "D") is None
    assert KeyMap(SettingsRepo(db)).overrides() == {"triage_resolve": ["D"]}
    dialog.close()
    win.activateWindow()
    press(qtbot, win, "d")
    press(qtbot, win, "d")  # an unanswered item: the second press confirms
    assert service.rows_by_id([items["parcel"]])[items["parcel"]].status is MentionStatus.RESOLVED
    again = MainWindow(service, clock, triage=triage, keymap=KeyMap(SettingsRepo(db)))
    qtbot.addWidget(again)
    actions = again.workbench.triage_actions
    assert actions is not None
    assert actions.actions[TriageCommand.RESOLVE].shortcut().toString() == "D"


def test_keymap_ignores_bad_settings(db: sqlite_utils.Database) -> None:
    settings = SettingsRepo(db)
    settings.set(KEY_OVERRIDES, '{"a": "not a list", "b": ["X"]}')
    assert KeyMap(settings).overrides() == {"b": ["X"]}
    settings.set(KEY_OVERRIDES, "not json")
    assert KeyMap(settings).keys("b", ["Y"]) == ["Y"]


def test_workbench_r_opens_the_conversation_without_a_composer(qtbot: QtBot, window: MainWindow) -> None:
    press(qtbot, window, "r")
    qtbot.waitUntil(lambda: window.conversation.isAncestorOf(window.focusWidget()))
