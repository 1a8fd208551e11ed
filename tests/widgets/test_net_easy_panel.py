"""The Net Easy report window: score with n, interval and response rate, greyed when too few, tested trend."""

from __future__ import annotations

import qasync
import sqlite_utils
from pytestqt.qtbot import QtBot

from console.surveys.net_easy import NetEasy, net_easy
from console.surveys.service import Grouping
from storage.settings import NET_EASY_MIN_N, SURVEY_CUSTOMER_DAYS
from tests.fakes.clock import FakeClock
from tests.fakes.surveys import World
from widgets.net_easy_panel import LOW_SAMPLE_TEXT, NetEasyPanel, interval_text, response_text, score_text

DAY = 86400


def test_formatting_matches_the_reference_example() -> None:
    figure = net_easy([1] * 12 + [3] * 5 + [6] * 3, sent=40)
    assert score_text(figure) == "+45"
    assert interval_text(figure) == "+8 to +70"
    assert response_text(figure) == "50% (20 of 40)"
    empty = net_easy([], sent=0)
    assert (score_text(empty), interval_text(empty), response_text(empty)) == ("–", "–", "nothing sent")
    assert score_text(net_easy([6, 6, 1])) == "−33"
    assert isinstance(figure, NetEasy)


def test_panel_shows_score_n_interval_and_groups(
    db: sqlite_utils.Database, clock: FakeClock, qtbot: QtBot, qloop: qasync.QEventLoop, arun: object
) -> None:
    world = World(db, clock)
    world.settings.set(SURVEY_CUSTOMER_DAYS, 0)
    for i, answer in enumerate(["1", "2", "6", None]):
        _, head = world.message(f"c{i}")
        world.answered(head)
        arun(world.service.send(head))  # type: ignore[operator]
        clock.advance(60)
        if answer is not None:
            world.message(f"c{i}", answer, parent=f"out-{i + 1}")
            world.sync(head)
        clock.advance(DAY)
    panel = NetEasyPanel(world.service, clock)
    qtbot.addWidget(panel)
    panel.show()
    assert panel.score_text() == "+33"
    details = panel.details_text()
    assert "n = 3" in details and "response rate 75% (3 of 4)" in details and LOW_SAMPLE_TEXT in details
    assert "95% interval" in details
    assert "No answers in the 30 days before" in panel.trend_label()
    table = panel.table(Grouping.CHANNEL)
    assert table.rowCount() == 1
    label, score = table.item(0, 0), table.item(0, 1)
    assert label is not None and score is not None
    assert label.text() == "Mastodon"
    assert LOW_SAMPLE_TEXT in score.text()
    assert len(panel.chart().points()) == 8
    world.settings.set(NET_EASY_MIN_N, 3)
    panel.period_combo().setCurrentIndex(0)  # last 7 days: reloads
    assert LOW_SAMPLE_TEXT not in panel.details_text()
    panel.chart().grab()  # paints without errors


def test_settings_tab_edits_question_interval_and_prompt(
    db: sqlite_utils.Database, clock: FakeClock, qtbot: QtBot
) -> None:
    from storage.settings import SURVEY_PROMPT_AFTER_RESOLVE, SURVEY_QUESTION

    world = World(db, clock)
    panel = NetEasyPanel(world.service, clock)
    qtbot.addWidget(panel)
    assert panel.question_edit().toPlainText() == SURVEY_QUESTION.default
    assert panel.days_spin().value() == 30 and panel.ask_check().isChecked()
    panel.question_edit().setPlainText("Was it easy?")
    panel.days_spin().setValue(60)
    panel.save_button().click()
    assert "both ends of the scale" in panel.settings_message()
    assert world.settings.get(SURVEY_QUESTION) == SURVEY_QUESTION.default
    assert world.settings.get(SURVEY_CUSTOMER_DAYS) == 30
    assert panel.question_edit().toPlainText() == "Was it easy?"  # the agent's text stays to fix
    panel.question_edit().setPlainText("Was it easy? 1 = very easy, 7 = very difficult")
    panel.ask_check().setChecked(False)
    panel.save_button().click()
    assert panel.settings_message().startswith("Saved")
    assert world.settings.get(SURVEY_QUESTION) == "Was it easy? 1 = very easy, 7 = very difficult"
    assert world.settings.get(SURVEY_CUSTOMER_DAYS) == 60
    assert world.settings.get(SURVEY_PROMPT_AFTER_RESOLVE) is False
