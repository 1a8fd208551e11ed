"""The preferences facade: typed, validated getters and setters over the stored settings (Qt-free)."""

from __future__ import annotations

import math
import re
from enum import StrEnum
from pathlib import Path

from storage.settings import AGENT_NAME, SURVEY_QUESTION, WELCOME_DONE, Setting, SettingsRepo
from storage.shifts import CURRENCY, HOURLY_RATE

#: Longest agent name (it is written into every event the agent causes and into the shift summaries).
MAX_AGENT_NAME = 60
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
#: The Net Easy question shipped with the app (console/surveys/service.py stores the agent's own wording).
DEFAULT_SURVEY_QUESTION = SURVEY_QUESTION.default
#: Offered in the settings; any other ISO 4217 code can be typed.
COMMON_CURRENCIES = ("EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CAD", "AUD", "JPY", "INR")


class Theme(StrEnum):
    """How the window is coloured: follow the system, or always light or dark."""

    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"


THEME = Setting("ui.theme", Theme.SYSTEM.value, str)


class Preferences:
    """What the Settings dialog edits that no other console service owns: the agent's name, the report's
    hourly cost and currency, the theme, and the data folder (read-only).

    Every setter validates first and raises ``ValueError`` with a message for the agent; nothing is stored then.
    """

    def __init__(self, settings: SettingsRepo, *, data_dir: Path) -> None:
        self._settings = settings
        self._data_dir = data_dir

    # ------------------------------------------------------------------ agent
    @property
    def agent_name(self) -> str:
        return self._settings.get(AGENT_NAME)

    @staticmethod
    def check_agent_name(name: str) -> str:
        """The name as it would be stored (trimmed).

        Raises:
            ValueError: empty, too long, or with a line break.
        """
        cleaned = name.strip()
        if not cleaned:
            raise ValueError("Enter your name: it labels your replies, notes and shift reports.")
        if any(ch in cleaned for ch in "\r\n\t"):
            raise ValueError("Your name must fit on one line.")
        if len(cleaned) > MAX_AGENT_NAME:
            raise ValueError(f"Your name can be at most {MAX_AGENT_NAME} characters long.")
        return cleaned

    def set_agent_name(self, name: str) -> None:
        """Store the agent's name (used as the actor of new events from now on).

        Raises:
            ValueError: see ``check_agent_name``.
        """
        self._settings.set(AGENT_NAME, self.check_agent_name(name))

    # ------------------------------------------------------------------ first start
    @property
    def welcome_done(self) -> bool:
        """The first-start welcome was answered (it is not shown again)."""
        return self._settings.get(WELCOME_DONE)

    def finish_welcome(self, agent_name: str | None) -> None:
        """The first-start welcome was answered: keep the name it asked for (when one was given), don't ask again."""
        if agent_name:
            self._settings.set(AGENT_NAME, agent_name)
        self._settings.set(WELCOME_DONE, True)

    # ------------------------------------------------------------------ reports
    @property
    def hourly_rate(self) -> float:
        """The cost of one hour of handling time in the shift summaries."""
        return self._settings.get(HOURLY_RATE)

    @property
    def currency(self) -> str:
        return self._settings.get(CURRENCY)

    @staticmethod
    def check_hourly_rate(rate: float) -> float:
        """Raises ValueError outside 0 to 10,000 or when not a number."""
        low, high = HOURLY_RATE.minimum or 0.0, HOURLY_RATE.maximum or 10_000.0
        if not math.isfinite(rate) or not low <= rate <= high:
            raise ValueError(f"The hourly cost must be a number from {low:,.0f} to {high:,.0f}.")
        return float(rate)

    @staticmethod
    def check_currency(code: str) -> str:
        """The upper-case ISO 4217 code.

        Raises:
            ValueError: not three letters.
        """
        cleaned = code.strip().upper()
        if not _CURRENCY_CODE.fullmatch(cleaned):
            raise ValueError(f"“{code.strip()}” is not a currency code: use three letters such as EUR, USD or GBP.")
        return cleaned

    def set_report_cost(self, rate: float, currency: str) -> None:
        """Store the hourly cost and its currency together (both are checked before either is stored).

        Raises:
            ValueError: see ``check_hourly_rate`` and ``check_currency``.
        """
        rate = self.check_hourly_rate(rate)
        currency = self.check_currency(currency)
        self._settings.set(HOURLY_RATE, rate)
        self._settings.set(CURRENCY, currency)

    # ------------------------------------------------------------------ appearance
    @property
    def theme(self) -> Theme:
        """The stored theme; an unknown stored value reads as ``Theme.SYSTEM``."""
        try:
            return Theme(self._settings.get(THEME))
        except ValueError:
            return Theme.SYSTEM

    def set_theme(self, theme: Theme) -> None:
        self._settings.set(THEME, Theme(theme).value)

    # ------------------------------------------------------------------ data
    @property
    def data_dir(self) -> Path:
        """Where the database, window state and crash reports live."""
        return self._data_dir
