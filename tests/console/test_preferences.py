"""The preferences facade: typed, validated settings the Settings dialog edits."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlite_utils

from console.preferences import THEME, Preferences, Theme
from storage.settings import AGENT_NAME, SettingsRepo
from storage.shifts import CURRENCY, HOURLY_RATE


def test_preferences_refuse_bad_values_and_store_nothing(db: sqlite_utils.Database, tmp_path: Path) -> None:
    settings = SettingsRepo(db)
    prefs = Preferences(settings, data_dir=tmp_path)
    for rate, currency in ((-1.0, "EUR"), (float("nan"), "EUR"), (10.0, "EU"), (10.0, "€")):
        with pytest.raises(ValueError, match=r"hourly cost|currency code"):
            prefs.set_report_cost(rate, currency)
    assert (prefs.hourly_rate, prefs.currency) == (30.0, "EUR")
    with pytest.raises(ValueError, match="one line"):
        prefs.set_agent_name("Sam\nRivera")
    settings.set(THEME, "purple")
    assert prefs.theme is Theme.SYSTEM
    prefs.set_theme(Theme.DARK)
    assert prefs.theme is Theme.DARK
    assert prefs.data_dir == tmp_path


def test_preferences_store_trimmed_and_upper_case_values(db: sqlite_utils.Database, tmp_path: Path) -> None:
    settings = SettingsRepo(db)
    prefs = Preferences(settings, data_dir=tmp_path)
    prefs.set_agent_name("  Sam ")
    prefs.set_report_cost(12.5, " chf ")
    assert (settings.get(AGENT_NAME), settings.get(HOURLY_RATE), settings.get(CURRENCY)) == ("Sam", 12.5, "CHF")
