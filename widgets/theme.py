"""Colours, channel labels and the style sheet shared by the widgets (one palette, loaded once per window)."""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from datetime import datetime

from PySide6.QtGui import QColor

from console.model import Health
from console.sla.bands import Band


@dataclass(frozen=True, slots=True)
class PillColours:
    background: str
    text: str


#: SLA pills: calm green, amber at the warning threshold, a strong red once breached, grey without a deadline.
BAND_PILLS: dict[Band, PillColours] = {
    Band.OK: PillColours("#DCF2E3", "#17663A"),
    Band.WARNING: PillColours("#FDEBC8", "#7A4B00"),
    Band.BREACHED: PillColours("#D93A3A", "#FFFFFF"),
    Band.NONE: PillColours("#ECEEF2", "#5F6B7A"),
}

#: Plain text colour per band, for ForegroundRole (views without the pill delegate, accessibility tools).
BAND_TEXT: dict[Band, str] = {
    Band.OK: "#17663A",
    Band.WARNING: "#8A5300",
    Band.BREACHED: "#C62828",
    Band.NONE: "#5F6B7A",
}

NEWCOMER_PILL = PillColours("#E2ECFE", "#1F4FB8")
DIRECT_PILL = PillColours("#EEE7FB", "#5B3A9E")
SECONDARY_TEXT = "#66707D"
ERROR_TEXT = "#B3261E"

#: Small dot drawn before the channel name.
CHANNEL_COLOURS: dict[str, str] = {
    "mastodon": "#6364FF",
    "bluesky": "#1185FE",
    "discourse": "#D0232B",
    "x": "#14171A",
    "youtube": "#FF0033",
    "facebook": "#1877F2",
    "manual": "#7A8491",
}

_CHANNEL_LABELS: dict[str, str] = {
    "mastodon": "Mastodon",
    "bluesky": "Bluesky",
    "discourse": "Discourse",
    "x": "X",
    "youtube": "YouTube",
    "facebook": "Facebook",
    "manual": "Manual",
}

_HEALTH_LABELS: dict[Health, str] = {
    Health.OK: "account OK",
    Health.DEGRADED: "retrying",
    Health.AUTH_EXPIRED: "sign-in expired",
    Health.RATE_LIMITED: "rate limited",
    Health.FAILING: "account failing",
}


def channel_label(kind: str) -> str:
    return _CHANNEL_LABELS.get(kind, kind.replace("_", " ").title())


def channel_colour(kind: str) -> QColor:
    return QColor(CHANNEL_COLOURS.get(kind, "#7A8491"))


def health_label(health: Health) -> str:
    return _HEALTH_LABELS[health]


def local_time(epoch: float, *, now: float) -> str:
    """Epoch UTC seconds as local wall time: ``14:02`` today, ``3 Jan 14:02`` otherwise (STYLE B4: only widgets)."""
    when = datetime.fromtimestamp(epoch).astimezone()
    today = datetime.fromtimestamp(now).astimezone().date()
    if when.date() == today:
        return when.strftime("%H:%M")
    return f"{when.day} {when.strftime('%b %H:%M')}"


def load_stylesheet() -> str:
    """The application style sheet, from the ``resources`` package (works from a wheel or a checkout)."""
    return (importlib.resources.files("resources") / "style.qss").read_text(encoding="utf-8")
