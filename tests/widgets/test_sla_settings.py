"""The SLA policy dialog: loads a policy set, edits targets and business hours, validates, restores defaults."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QTime
from PySide6.QtWidgets import QComboBox, QSpinBox
from pytestqt.qtbot import QtBot

from console.sla.calendar import Calendar
from console.sla.policy import ALWAYS_NAME, PolicyRule, PolicySet, shipped_policy
from widgets.sla_settings import SlaSettingsDialog


def make(qtbot: QtBot, policies: PolicySet | None = None) -> SlaSettingsDialog:
    dialog = SlaSettingsDialog(policies or shipped_policy(), defaults=shipped_policy())
    qtbot.addWidget(dialog)
    return dialog


def test_sla_settings_shows_the_shipped_defaults(qtbot: QtBot) -> None:
    dialog = make(qtbot)
    assert dialog.policy_set().rules == shipped_policy().rules
    assert dialog.time_zone.text() == "Europe/London"


def test_sla_settings_edits_a_target_and_business_hours(qtbot: QtBot) -> None:
    dialog = make(qtbot)
    first = dialog.table.cellWidget(0, 2)
    calendar = dialog.table.cellWidget(0, 6)
    assert isinstance(first, QSpinBox) and isinstance(calendar, QComboBox)
    first.setValue(15)
    calendar.setCurrentText("business")
    dialog.day_start[0].setTime(QTime(8, 0))
    dialog.holidays.setPlainText("2026-12-25\n2026-12-31")
    with qtbot.waitSignal(dialog.policies_applied) as blocker:
        dialog.buttons.accepted.emit()
    policies = blocker.args[0]
    assert isinstance(policies, PolicySet)
    assert policies.rules[0].first_response == 15 * 60 and policies.rules[0].calendar == "business"
    business = policies.calendars["business"]
    assert business.hours is not None and business.hours[0] == ((8 * 60, 17 * 60 + 30),)
    assert len(business.holidays) == 2


def test_sla_settings_add_rule_goes_before_the_default(qtbot: QtBot) -> None:
    dialog = make(qtbot)
    dialog.add_button.click()
    rules = dialog.policy_set().rules
    assert len(rules) == 2 and rules[0].channel == "mastodon" and rules[-1].channel is None


def test_sla_settings_refuses_bad_input_with_a_message_and_keeps_the_dialog(qtbot: QtBot) -> None:
    dialog = make(qtbot)
    calendar = dialog.table.cellWidget(0, 6)
    assert isinstance(calendar, QComboBox)
    calendar.setCurrentText("business")
    dialog.time_zone.setText("Mars/Olympus")
    with qtbot.assertNotEmitted(dialog.policies_applied):
        dialog.buttons.accepted.emit()
    assert "Unknown time zone" in dialog.error.text() and not dialog.error.isHidden()
    dialog.remove_button.click()  # the default rule cannot go
    assert "default" in dialog.error.text()


def test_sla_settings_restore_defaults(qtbot: QtBot) -> None:
    custom = PolicySet(rules=(PolicyRule(first_response=5 * 60),), calendars={ALWAYS_NAME: Calendar()})
    dialog = make(qtbot, custom)
    assert dialog.policy_set().rules[0].first_response == 5 * 60
    dialog.defaults_button.click()
    assert dialog.policy_set().rules == shipped_policy().rules


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [("time_zone", "Europe/Lodnon", "Unknown time zone"), ("holidays", "2026-12-25\nChristmas", "'Christmas'")],
)
def test_sla_settings_bad_calendar_input_is_refused_in_place_while_no_rule_uses_it(
    qtbot: QtBot, field: str, typed: str, message: str
) -> None:
    """Issue 19 #14: with every rule on the 24/7 calendar, a typo still says what is wrong and keeps the edits."""
    dialog = make(qtbot)
    dialog.show()
    assert all(rule.calendar != "business" for rule in dialog.policy_set().rules)
    first = dialog.table.cellWidget(0, 2)
    assert isinstance(first, QSpinBox)
    first.setValue(20)
    if field == "time_zone":
        dialog.time_zone.setText(typed)
    else:
        dialog.holidays.setPlainText(typed)
    with qtbot.assertNotEmitted(dialog.policies_applied):
        dialog.buttons.accepted.emit()
    assert dialog.isVisible()
    assert message in dialog.error.text() and dialog.error.isVisible()
    assert first.value() == 20
    assert (dialog.time_zone.text() if field == "time_zone" else dialog.holidays.toPlainText()) == typed


def test_sla_settings_says_at_once_when_the_time_zone_is_unknown(qtbot: QtBot) -> None:
    dialog = make(qtbot)
    dialog.show()
    dialog.time_zone.setText("Mars/Olympus")
    dialog.time_zone.editingFinished.emit()
    assert "Unknown time zone" in dialog.error.text() and dialog.error.isVisible()
    dialog.time_zone.setText("Europe/Paris")
    dialog.time_zone.editingFinished.emit()
    assert dialog.error.isHidden()
