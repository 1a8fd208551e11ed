"""The live supervisor view's data (issue 23 item 2): the team's queue now, and the supervisor's two actions.

``SupervisorView.snapshot()`` is what the window redraws every second: who is on shift and online, who holds what
(claims with their age on the server's clock, stale ones flagged), the oldest waiting item per channel, the
breaches of this hour, the expected wait, and first-response time and Net Easy per agent and per channel for the
current shift. It is one round of indexed queries (storage/team/supervisor.py), so that 50 agents on 100,000
items cost the same each second as five on a hundred. Net Easy is pooled from the answers' counts (metrics.md:
never an average of per-agent scores), with the shift summary's scorer.

The actions are events with their author: ``reassign(item, to)`` (a ``reassigned`` event; the item's
``assigned_to`` follows) and ``release_stale(item)`` (the claim removed, a ``claim_broken`` event). PostgreSQL
decides who may take them: an agent's login is refused (``TeamRefused``) whatever the window shows.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from console.ports import Clock
from console.replies.capacity import DEFAULT_WINDOW_SECONDS, WaitEstimate, expected_wait
from console.reports.summary import NetEasy, NetEasyScorer, bucket_scores, score_net_easy
from storage.team.claims import ClaimRepo
from storage.team.connect import TeamDb
from storage.team.reports import channel_of
from storage.team.supervisor import BreachedItem, FirstReply, QueueFigures, SupervisorRepo, SurveyAnswer

__all__ = [
    "AgentLine",
    "ChannelLine",
    "HeldItem",
    "SupervisorSnapshot",
    "SupervisorView",
]

MentionIds = Callable[[Sequence[str]], Mapping[str, int]]
"""item keys -> local mention ids (``TeamLocalRepo.mention_ids``), so the window can open an item."""


def _no_ids(_keys: Sequence[str]) -> Mapping[str, int]:
    return {}


@dataclass(frozen=True, slots=True)
class HeldItem:
    """A live claim: "Sam holds #12 · 40 s"."""

    item_key: str
    mention_id: int | None
    holder: str
    age_s: int
    #: Expired without renewal (the holder's machine went away): the supervisor may release it.
    stale: bool


@dataclass(frozen=True, slots=True)
class AgentLine:
    """One member on the view: presence, what they hold, and this shift's figures."""

    name: str
    role: str
    on_shift: bool
    on_shift_since: int | None
    online: bool
    holding: int
    replies: int
    #: Median first-response time of the items this agent answered first in the shift (seconds), or None.
    first_response_s: float | None
    net_easy: NetEasy


@dataclass(frozen=True, slots=True)
class ChannelLine:
    """One channel: its oldest waiting item and this shift's figures."""

    channel: str
    oldest_item: str | None
    oldest_mention_id: int | None
    #: Seconds the oldest waiting item has waited (by the caller's clock), or None when nothing waits.
    oldest_wait_s: int | None
    replies: int
    first_response_s: float | None
    net_easy: NetEasy


@dataclass(frozen=True, slots=True)
class SupervisorSnapshot:
    at: int
    #: Where the shift's figures start (the earliest start among members on shift, else the last 8 hours).
    shift_since: int
    agents: list[AgentLine]
    held: list[HeldItem]
    channels: list[ChannelLine]
    waiting: int
    breaches: list[BreachedItem]
    expected_wait: WaitEstimate
    #: The whole team's shift: pooled over every answer, not averaged over agents.
    net_easy: NetEasy
    first_response_s: float | None

    @property
    def online(self) -> list[str]:
        return [a.name for a in self.agents if a.online]

    @property
    def on_shift(self) -> list[str]:
        return [a.name for a in self.agents if a.on_shift]


def _median(values: Iterable[int]) -> float | None:
    ordered = sorted(values)
    return float(statistics.median(ordered)) if ordered else None


def _net_easy(answers: Iterable[SurveyAnswer], scorer: NetEasyScorer) -> NetEasy:
    scores = [a.score for a in answers]
    # "sent" is unknown here (only answers are read each second): the response rate is left out.
    return scorer(0, *bucket_scores(scores))


class SupervisorView:
    """The supervisor window's data and actions, as ``member`` on the team server."""

    def __init__(
        self,
        db: TeamDb,
        schema: str,
        member: str,
        clock: Clock,
        *,
        mention_ids: MentionIds | None = None,
        scorer: NetEasyScorer = score_net_easy,
    ) -> None:
        self._repo = SupervisorRepo(db)
        self._claims = ClaimRepo(db, schema)
        self._member = member
        self._clock = clock
        self._mention_ids = mention_ids or _no_ids
        self._scorer = scorer

    async def snapshot(self) -> SupervisorSnapshot:
        """The team's queue now (one round of indexed queries; cheap enough for every second).

        Raises:
            TeamUnavailable: the server cannot be reached (the window keeps the last snapshot and says so).
        """
        now = int(self._clock.now())
        figures = await self._repo.figures(
            now=now, shift_since=None, hour_start=now - now % 3600, pace_since=now - DEFAULT_WINDOW_SECONDS
        )
        return self._assemble(now, figures)

    def _assemble(self, now: int, f: QueueFigures) -> SupervisorSnapshot:
        starts = [m.on_shift_since for m in f.members if m.on_shift_since is not None]
        since = min(starts) if starts else now - 8 * 3600
        keys = [c.item_key for c in f.claims] + [w.item_key for w in f.oldest_waiting]
        ids = dict(self._mention_ids(keys)) if keys else {}
        holding = Counter(c.holder for c in f.claims if not c.stale)
        by_agent: dict[str, list[FirstReply]] = {}
        by_channel: dict[str, list[FirstReply]] = {}
        for r in f.first_replies:
            by_agent.setdefault(r.author, []).append(r)
            by_channel.setdefault(r.channel, []).append(r)
        answers_by_agent: dict[str, list[SurveyAnswer]] = {}
        answers_by_channel: dict[str, list[SurveyAnswer]] = {}
        for a in f.answers:
            answers_by_agent.setdefault(a.agent, []).append(a)
            answers_by_channel.setdefault(a.channel, []).append(a)
        agents = [
            AgentLine(
                name=m.name, role=m.role, on_shift=m.on_shift_since is not None, on_shift_since=m.on_shift_since,
                online=m.online, holding=holding[m.name], replies=len(by_agent.get(m.name, [])),
                first_response_s=_median(r.seconds for r in by_agent.get(m.name, [])),
                net_easy=_net_easy(answers_by_agent.get(m.name, []), self._scorer),
            )
            for m in f.members
        ]  # fmt: skip
        oldest: dict[str, tuple[int, str]] = {}
        for w in f.oldest_waiting:
            channel = channel_of(w.account_key)
            if channel not in oldest or w.posted_at < oldest[channel][0]:
                oldest[channel] = (w.posted_at, w.item_key)
        names = sorted(set(oldest) | set(by_channel) | set(answers_by_channel))
        channels = [
            ChannelLine(
                channel=c, oldest_item=oldest[c][1] if c in oldest else None,
                oldest_mention_id=ids.get(oldest[c][1]) if c in oldest else None,
                oldest_wait_s=max(0, now - oldest[c][0]) if c in oldest else None,
                replies=len(by_channel.get(c, [])),
                first_response_s=_median(r.seconds for r in by_channel.get(c, [])),
                net_easy=_net_easy(answers_by_channel.get(c, []), self._scorer),
            )
            for c in names
        ]  # fmt: skip
        held = [HeldItem(c.item_key, ids.get(c.item_key), c.holder, c.age_s, c.stale) for c in f.claims]
        return SupervisorSnapshot(
            at=now,
            shift_since=since,
            agents=agents,
            held=held,
            channels=channels,
            waiting=f.waiting,
            breaches=f.breaches,
            expected_wait=expected_wait(
                ahead=f.waiting, replies=f.replies_in_window, window_seconds=DEFAULT_WINDOW_SECONDS, now=now
            ),
            net_easy=_net_easy(f.answers, self._scorer),
            first_response_s=_median(r.seconds for r in f.first_replies),
        )

    async def reassign(self, item_key: str, to: str | None, note: str = "") -> None:
        """Assign an item to member ``to`` (None: back to the pool): a ``reassigned`` event by this supervisor.

        Raises:
            TeamRefused: this login is not a supervisor (PostgreSQL's row security refuses the event).
        """
        await self._claims.reassign(item_key, to, self._member, note.strip())

    async def release_stale(self, item_key: str) -> str | None:
        """Release whoever's claim holds ``item_key`` (a stale one): a ``claim_broken`` event by this supervisor.

        Returns:
            The member whose claim was released, or None when nobody held one.

        Raises:
            TeamRefused: this login is not a supervisor.
        """
        return await self._claims.break_claim(item_key, self._member)
