"""Team claims in the window (issue 22 item 4): the ports the window reads, the words it shows, the banner.

Who is replying to what comes from the team's claims mirror (``ClaimService`` in ``console/team/claims.py``); the
window reads it through the structural ports below, so that widgets never import the team package's storage and
tests can drive the window with a small in-memory team. The words are here once: the queue's marker ("Sam · 40 s"),
the conversation's banner ("Sam is replying · 40 s") and the questions Send asks ("Sam is replying to this
customer (40 s). Send yours anyway?", "You're offline from the team…").
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QWidget

from console.ports import Clock
from console.sla.bands import format_age
from console.wording import count
from widgets.dark import surface as theme_surface
from widgets.dark import text as theme_text
from widgets.theme import local_time

if TYPE_CHECKING:  # the team package imports psycopg: never at a solo start (cold start budget)
    from console.team.replicator import TeamChange

#: What the marker says for our own claim.
YOU = "You"
#: Team modes in which the server cannot be asked before a send (TeamStatus.mode).
OFFLINE_MODES = frozenset({"offline"})
#: Changes arriving within this many milliseconds repaint once (a catch-up applies pages back to back).
COALESCE_MS = 100


class ClaimLike(Protocol):
    """One live claim as the window shows it (``console.team.claims.ClaimView``)."""

    @property
    def mention_id(self) -> int: ...
    @property
    def holder(self) -> str: ...
    @property
    def since(self) -> float: ...
    @property
    def expires_at(self) -> float: ...
    @property
    def ours(self) -> bool: ...


class AdviceLike(Protocol):
    """What to ask before Send (``console.team.claims.SendAdvice``): kind "ok", "claimed" (holder, since) or
    "offline"."""

    @property
    def kind(self) -> str: ...
    @property
    def holder(self) -> str: ...
    @property
    def since(self) -> float | None: ...


class ClaimPort(Protocol):
    """What the window asks of the claims (``ClaimService``): the mirror without I/O, claim/renew/release."""

    def claim_of(self, mention_id: int) -> ClaimLike | None: ...
    def advice(self, mention_id: int) -> AdviceLike: ...
    def claims_for(self, mention_ids: Sequence[int]) -> Mapping[int, ClaimLike]: ...
    async def claim(self, mention_id: int) -> ClaimLike | None: ...
    def typing(self, mention_id: int) -> None: ...
    def release(self, mention_id: int) -> None: ...
    async def take_next(self) -> int | None: ...


class TeamStatusLike(Protocol):
    """The team line's facts (``console.team.replicator.TeamStatus``)."""

    @property
    def member(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def server(self) -> str: ...
    @property
    def mode(self) -> str: ...
    @property
    def since(self) -> float: ...
    @property
    def reason(self) -> str: ...
    @property
    def to_push(self) -> int: ...
    @property
    def conflicts(self) -> int: ...


class TeamPort(Protocol):
    """The running team (``Runtime.team``, a ``TeamService``); None when solo."""

    @property
    def claims(self) -> ClaimPort: ...
    def status(self) -> TeamStatusLike: ...
    def subscribe(self, listener: Callable[[TeamChange], None]) -> None: ...


# ---------------------------------------------------------------------------------------------------- words
def claim_age(since: float, now: float) -> str:
    """``40 s`` under a minute, then as the queue writes ages (``4 min``, ``2 h``)."""
    seconds = max(0, int(now - since))
    return f"{seconds} s" if seconds < 60 else format_age(posted_at=0, now=seconds)


def marker_text(claim: ClaimLike, now: float) -> str:
    """The queue's marker: ``Sam · 40 s``, or ``You · 12 s`` for our own claim."""
    return f"{YOU if claim.ours else claim.holder} · {claim_age(claim.since, now)}"


def banner_text(claim: ClaimLike, now: float) -> str:
    """The conversation's banner: ``Sam is replying · 40 s``, ``You are replying · 12 s``."""
    who = "You are" if claim.ours else f"{claim.holder} is"
    return f"{who} replying · {claim_age(claim.since, now)}"


def claimed_question(holder: str, since: float | None, now: float) -> str:
    """What Send asks over a colleague's claim: ``Sam is replying to this customer (40 s). Send yours anyway?``"""
    age = "" if since is None else f" ({claim_age(since, now)})"
    return f"{holder} is replying to this customer{age}. Send yours anyway?"


OFFLINE_QUESTION = "You're offline from the team: a colleague may be answering. Send anyway?"
OFFLINE_DETAIL = (
    "Your reply is queued and marked for review; it leaves when the channel can be reached. Cancel keeps your draft."
)
CLAIMED_DETAIL = "Both replies would reach the customer. Cancel keeps your draft."


def is_offline(status: TeamStatusLike) -> bool:
    return status.mode in OFFLINE_MODES


def team_line(status: TeamStatusLike, *, now: float) -> str:
    """The health strip's team line: ``Team · live``, ``Team · polling (reason)``, ``Team · offline since 14:02,
    3 changes to send``; conflicts to look at are said too."""
    if status.mode == "live":
        text = "Team · live"
    elif status.mode == "polling":
        text = f"Team · polling ({status.reason})" if status.reason else "Team · polling"
    elif status.mode == "connecting":
        text = "Team · connecting…"
    else:
        text = f"Team · offline since {local_time(status.since, now=now)}"
    parts = [text]
    if status.to_push:
        parts.append(f"{count(status.to_push, 'change')} to send")
    if status.conflicts:
        parts.append(f"{count(status.conflicts, 'conflict')} to look at")
    return ", ".join(parts)


def team_state(status: TeamStatusLike) -> str:
    """The chip's colour: ok while live, warning while polling or connecting, error offline."""
    return {"live": "ok", "polling": "warning", "connecting": "warning"}.get(status.mode, "error")


# ---------------------------------------------------------------------------------------------------- widgets
class TeamBridge(QObject):
    """Carries the team's changes to the GUI thread, gathered: at most one ``changed`` per ``COALESCE_MS``.

    ``changed`` carries the items the team changed (new items and changed ones, from applied pages); claims are
    re-read by the receiver whatever the ids, since a claims change is cheap to read from the mirror.
    """

    changed = Signal(object)  # frozenset[int]: items whose rows changed beyond their claim (may be empty)
    _arrived = Signal(object)  # queued to the GUI thread when a change comes from another thread

    def __init__(self, team: TeamPort, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._items: set[int] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(COALESCE_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._arrived.connect(self._on_arrived)
        team.subscribe(self._on_team_change)

    def _on_team_change(self, change: TeamChange) -> None:
        report = change.report
        items = () if report is None else (*report.new_mentions, *report.changed)
        with contextlib.suppress(RuntimeError):  # the window was deleted meanwhile
            self._arrived.emit(frozenset(items))

    @Slot(object)
    def _on_arrived(self, items: frozenset[int]) -> None:
        self._items |= items
        if not self._timer.isActive():
            self._timer.start()

    @Slot()
    def _on_timer_timeout(self) -> None:
        items, self._items = frozenset(self._items), set()
        self.changed.emit(items)


class ClaimBanner(QFrame):
    """ "Sam is replying · 40 s" above the conversation while someone holds the item (also opened later)."""

    def __init__(self, claims: ClaimPort, clock: Clock, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("claimBanner")
        self.setAccessibleName("Who is replying")
        self._claims = claims
        self._clock = clock
        self._mention_id: int | None = None
        self._claim: ClaimLike | None = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 10, 4)
        self._label = QLabel()
        self._label.setObjectName("claimBannerText")
        self._label.setTextFormat(Qt.TextFormat.PlainText)
        self._label.setWordWrap(True)
        layout.addWidget(self._label, 1)
        self.restyle()
        self.hide()

    def text(self) -> str:
        return self._label.text() if not self.isHidden() else ""

    def restyle(self) -> None:
        """Colours for the current theme: amber for a colleague's claim, blue for ours."""
        ours = self._claim is not None and self._claim.ours
        background, border, ink = ("#E2ECFE", "#B7CBF5", "#1F4FB8") if ours else ("#FDF1D6", "#F0D29A", "#7A4B00")
        self.setStyleSheet(
            f"#claimBanner{{background:{theme_surface(background).name()};border:1px solid "
            f"{theme_surface(border).name()};border-radius:6px;}}"
            f"QLabel#claimBannerText{{color:{theme_text(ink).name()};font-weight:600;background:transparent;}}"
        )

    @Slot(object)
    def set_mention(self, mention_id: int | None) -> None:
        self._mention_id = mention_id
        self.refresh()

    @Slot()
    def refresh(self) -> None:
        """Re-read the claim of the shown item from the mirror (no I/O)."""
        claim = None if self._mention_id is None else self._claims.claim_of(self._mention_id)
        was_ours = self._claim is not None and self._claim.ours
        self._claim = claim
        if claim is not None and claim.ours != was_ours:
            self.restyle()
        self._show(self._clock.now())

    @Slot(float)
    def on_tick(self, now: float) -> None:
        """The seconds count on (driven by the queue view's one timer)."""
        if self._claim is not None:
            self._show(now)

    def _show(self, now: float) -> None:
        claim = self._claim
        if claim is None:
            self.hide()
            return
        text = banner_text(claim, now)
        if text != self._label.text():
            self._label.setText(text)
        self.setToolTip(
            "You hold this item while you write; colleagues see it in their queue."
            if claim.ours
            else f"{claim.holder} opened the reply box on this item. Sending yours too asks first."
        )
        self.show()
