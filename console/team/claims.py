"""Claims: who is replying to what, live (issue 22 item 4): the composer's claim, "take next", the send gate.

Opening the composer claims the item on the team server (a row with an expiry, on the server's clock), typing
renews it, send, cancel or close releases it. Every member's copy mirrors the live claims (``team_claims``,
refreshed by the replicator on each ``_claims`` notification and here after each own change), so the queue and the
conversation show "Sam is replying · 40 s" without a round trip. The claim is advice to people; what makes a
double reply impossible is :class:`TeamSendGate`: right before the outbox posts, the send is recorded on the server
in the one transaction that checks the claim and the item's latest reply (``ClaimRepo.record_send``), so of two
members racing on one item only one can pass. Cut off from the team server, an agent still writes and queues;
the reply waits with a plain reason until the server answers, unless the agent chose "send anyway" (then it
leaves and is marked for review).

docs/TEAM.md "What the runtime and the window call" is the contract of :class:`ClaimService`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from console.ports import Clock
from console.replies.outbox import GateVerdict
from storage.errors import StorageError, TeamRefused, TeamUnavailable
from storage.rows import MentionRow, ReplyRow
from storage.team.claims import ClaimRepo, ClaimRow, SendVerdict
from storage.team.claims import SendOutcome as Recorded
from storage.team_local import TeamLocalRepo

__all__ = [
    "DEFAULT_CLAIM_TTL",
    "IDLE_SECONDS",
    "AdviceKind",
    "ClaimService",
    "ClaimView",
    "SendAdvice",
    "TeamSendGate",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Seconds a claim lives on the server without a renewal: an agent who walks away frees the item this fast.
DEFAULT_CLAIM_TTL = 90.0
#: An open composer nobody typed in for this long stops renewing its claim (it then expires): a claim is a
#: promise that someone is answering, and an editor left open over lunch must not block colleagues (the
#: blocking expiring locks osTicket users complained about, osTicket#2504).
IDLE_SECONDS = 600.0
#: How long closing the app waits for its claims to be released (they expire by themselves otherwise).
RELEASE_ON_CLOSE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class ClaimView:
    """A live claim as the window shows it ("Sam is replying · 40 s")."""

    mention_id: int
    holder: str  # member name
    since: float  # epoch seconds (server clock) the claim began
    expires_at: float
    ours: bool


class AdviceKind(StrEnum):
    OK = "ok"  # nobody else is on it: send
    CLAIMED = "claimed"  # a colleague is replying: ask first
    OFFLINE = "offline"  # the team server is unreachable: a colleague may be answering; ask first


@dataclass(frozen=True, slots=True)
class SendAdvice:
    """What the window should ask before Send, if anything (``kind`` OK: nothing)."""

    kind: AdviceKind
    holder: str = ""
    since: float | None = None

    def question(self, now: float) -> str:
        """The question to ask the agent, in plain words ("" when there is nothing to ask).

        Args:
            now: The current epoch time (for "40 s").
        """
        if self.kind is AdviceKind.CLAIMED:
            age = "" if self.since is None else f" ({max(0, int(now - self.since))} s)"
            return f"{self.holder} is replying to this customer{age}. Send yours anyway?"
        if self.kind is AdviceKind.OFFLINE:
            return "You're offline from the team: a colleague may be answering. Send anyway?"
        return ""


@dataclass(slots=True)
class _Open:
    """A claim of ours that a composer holds open: renewed while it is used."""

    item_key: str
    renewed_at: float  # local clock
    active_at: float  # local clock: last claim or keystroke


class ClaimService:
    """Claims for this member: claim on compose, renew while typing, release; the mirror; take next; advice.

    One instance per team runtime (``TeamService.claims``). Synchronous methods never do I/O on the team server:
    :meth:`typing` and :meth:`release` schedule a task of this service (cancelled by :meth:`aclose`), the reads
    come from the local mirror. :meth:`run` renews the claims of open composers in the background.
    """

    def __init__(
        self,
        repo: ClaimRepo,
        local: TeamLocalRepo,
        member: str,
        clock: Clock,
        *,
        catch_up: Callable[[], Awaitable[object]] | None = None,
        reachable: Callable[[], bool] | None = None,
        ttl: float = DEFAULT_CLAIM_TTL,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        """Wire the service; nothing runs until a method is called (or :meth:`run` is started).

        Args:
            repo: Claims on the team server.
            local: The local copy (item keys of mention ids, the claims mirror).
            member: This member's name (``members.name``).
            clock: Local time (rate limits, idleness); claim times come from the server.
            catch_up: Push and pull with the team server now (``Replicator.sync_once``): an item handed out by
                "take next" that is not local yet, a send the server does not know the item of.
            reachable: Whether the replicator can reach the team server now (its mode is not "offline");
                combined with this service's own last call.
            ttl: Claim lifetime in seconds; renewals at most every ``ttl / 3``.
            idle_seconds: An open claim nobody typed in for this long is no longer renewed.
        """
        self._repo = repo
        self._local = local
        self.member = member
        self._clock = clock
        self._catch_up = catch_up
        self._reachable = reachable
        self.ttl = ttl
        self._idle = idle_seconds
        self._open: dict[int, _Open] = {}
        self._tried: dict[int, float] = {}  # head id -> when a claim was last tried (offline retries, rate limit)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listeners: list[Callable[[Sequence[int]], None]] = []
        self._unreachable = False
        self._failed = False  # the last call on the team server could not be made (offline, refused, failed)

    # ------------------------------------------------------------------ reads (local, no I/O on the server)
    def claim_of(self, mention_id: int) -> ClaimView | None:
        """The live claim of an item (any message of its thread), from the local mirror."""
        head = self._head(mention_id)
        return self.claims_for([head]).get(head)

    def claims_for(self, mention_ids: Sequence[int]) -> dict[int, ClaimView]:
        """The live claims of the given queue items (thread heads), by mention id, from the local mirror.

        A mirrored claim past its expiry (by this machine's clock) is left out: the server forgets it then too.
        """
        wanted = set(mention_ids)
        now = self._clock.now()
        out: dict[int, ClaimView] = {}
        for row in self._local.claims():
            if row.mention_id is None or row.mention_id not in wanted or row.expires_at <= now:
                continue
            out[row.mention_id] = ClaimView(
                row.mention_id, row.holder, row.claimed_at, row.expires_at, row.holder == self.member
            )
        return out

    @property
    def offline(self) -> bool:
        """The team server could not be reached by the last claim call, or the replicator says so."""
        return self._unreachable or (self._reachable is not None and not self._reachable())

    def advice(self, mention_id: int) -> SendAdvice:
        """What to ask before Send: OK (nothing), CLAIMED by a colleague, or OFFLINE from the team."""
        if self.offline:
            return SendAdvice(AdviceKind.OFFLINE)
        view = self.claim_of(mention_id)
        if view is not None and not view.ours:
            return SendAdvice(AdviceKind.CLAIMED, view.holder, view.since)
        return SendAdvice(AdviceKind.OK)

    def mark_reachable(self, reachable: bool) -> None:
        """Record whether the team server answered a call made elsewhere (the send gate), for :attr:`offline`."""
        self._unreachable = not reachable

    def subscribe(self, listener: Callable[[Sequence[int]], None]) -> None:
        """Call ``listener(mention_ids)`` when this service changed the mirror (the window repaints those)."""
        self._listeners.append(listener)

    # ------------------------------------------------------------------ the composer's claim
    async def claim(self, mention_id: int) -> ClaimView | None:
        """Claim an item for this member (the composer opened on it).

        Returns:
            Our claim, or the colleague's that holds the item (the banner says so; Send will ask first); None
            when the team server cannot be reached (then :meth:`advice` says OFFLINE) or the item is unknown.
        """
        head = self._head(mention_id)
        self._tried[head] = self._clock.now()
        key = self._key(head)
        if key is None:
            return None
        row = await self._call(lambda: self._repo.claim(key, self.member, self.ttl))
        if row is None and not self._failed and self._catch_up is not None:
            # The server does not know the item yet (this copy fetched it and has not pushed it): push, retry.
            await self._quietly(self._catch_up())
            row = await self._call(lambda: self._repo.claim(key, self.member, self.ttl))
        if row is None:
            return None
        view = self._view(head, row)
        now = self._clock.now()
        if view.ours:
            self._open[head] = _Open(key, renewed_at=now, active_at=now)
        else:
            self._open.pop(head, None)
        await self.refresh()
        return view

    def typing(self, mention_id: int) -> None:
        """The agent typed in the composer: keep the claim alive (at most one renewal per ``ttl / 3``).

        No await: a renewal (or, when the claim was lost or never taken, a new claim) runs as a task.
        """
        head = self._head(mention_id)
        now = self._clock.now()
        entry = self._open.get(head)
        if entry is None:
            if now - self._tried.get(head, float("-inf")) >= self.ttl / 3:
                self._tried[head] = now
                self._spawn(self.claim(head), f"claim-{head}")
            return
        entry.active_at = now
        if now - entry.renewed_at >= self.ttl / 3:
            entry.renewed_at = now
            self._spawn(self._renew(head, entry), f"renew-{head}")

    def release(self, mention_id: int) -> None:
        """The composer was sent, cancelled or closed: release our claim (a task; offline, it simply expires).

        Also a claim of ours this session did not open (the mirror says we hold it: one left by a crash, or taken
        by a "take next" whose answer was lost), which would otherwise block colleagues for the full TTL.
        """
        head = self._head(mention_id)
        self._tried.pop(head, None)
        entry = self._open.pop(head, None)
        key = entry.item_key if entry is not None else self._mirrored_own(head)
        if key is not None:
            self._spawn(self._release(key), f"release-{head}")

    async def release_own(self) -> int:
        """Release every claim the server says this member holds, except those of composers open now.

        ``TeamService.start`` calls it: claims left by an earlier run (a crash, a lost "take next" answer) are no
        one's work any more and would block colleagues until they expire; a composer that is still open claims
        again on its next keystroke.

        Returns:
            How many claims were released; 0 when the server cannot be reached (they then expire).
        """
        rows = await self._call(self._repo.active, quiet=True)
        if rows is None:
            return 0
        released = 0
        for row in rows:
            if row.holder != self.member or any(e.item_key == row.item_key for e in self._open.values()):
                continue
            if await self._call(self._releaser(row.item_key), quiet=True):
                released += 1
        if released:
            await self.refresh()
        return released

    async def take_next(self) -> int | None:
        """Claim the most urgent unclaimed item for this member (the server hands each taker a different one).

        Returns:
            Its local mention id (the queue item), or None when nothing is left or the server is unreachable.
        """
        key = await self._call(lambda: self._repo.take_next(self.member, self.ttl))
        if key is None:
            if self._failed:
                # The answer may have been lost after the server handed us an item: free it rather than let it
                # block colleagues for the full TTL (a no-op when the server is still away or gave us nothing).
                self._spawn(self.release_own(), "release-own-after-take")
            return None
        mention_id = self._local.mention_ids([key]).get(key)
        if mention_id is None and self._catch_up is not None:
            # Handed an item this copy has not pulled yet: catch up first, then open it.
            await self._quietly(self._catch_up())
            mention_id = self._local.mention_ids([key]).get(key)
        if mention_id is None:
            log.warning("take next handed out %s, which this copy does not hold; released", key)
            await self._release(key)
            return None
        now = self._clock.now()
        self._open[mention_id] = _Open(key, renewed_at=now, active_at=now)
        self._tried[mention_id] = now
        await self.refresh()
        return mention_id

    # ------------------------------------------------------------------ background
    async def run(self) -> None:
        """Renew the claims of open composers every ``ttl / 3`` while they are used; cancel to stop.

        A composer idle for ``idle_seconds`` stops renewing (its claim expires on the server); typing claims
        again.
        """
        while True:
            await asyncio.sleep(self.ttl / 3)
            await self.renew_due()

    async def renew_due(self) -> None:
        """One pass of :meth:`run`: renew every open claim whose renewal is due, forget idle ones."""
        now = self._clock.now()
        for head, entry in list(self._open.items()):
            if now - entry.active_at >= self._idle:
                del self._open[head]  # left to expire: nobody is typing
                continue
            if now - entry.renewed_at >= self.ttl / 3 * 0.9:
                entry.renewed_at = now
                await self._renew(head, entry)

    async def refresh(self) -> list[int]:
        """Mirror the server's live claims now (the replicator also does on each notification).

        Returns:
            The mention ids whose claim changed (listeners are told too); [] when the server is unreachable.
        """
        rows = await self._call(self._repo.active)
        if rows is None:
            return []
        changed = self._local.replace_claims((row.item_key, row.holder, row.claimed_at, row.expires_at) for row in rows)
        if changed:
            for listener in list(self._listeners):
                try:
                    listener(changed)
                except Exception:  # a listener's bug must not break claiming
                    log.exception("claims listener failed")
        return changed

    async def settled(self) -> None:
        """Wait for the renewals and releases scheduled so far (tests, and before a hand-over reads claims)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Stop the background tasks and release our open claims (briefly; otherwise they expire)."""
        keys = [entry.item_key for entry in self._open.values()]
        self._open.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if keys:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(self._release(k) for k in keys), return_exceptions=True),
                    RELEASE_ON_CLOSE_SECONDS,
                )

    # ------------------------------------------------------------------ helpers
    def _head(self, mention_id: int) -> int:
        head = self._local.head_of(mention_id)
        return mention_id if head is None else head

    def _releaser(self, key: str) -> Callable[[], Awaitable[bool]]:
        return lambda: self._repo.release(key, self.member)

    def _mirrored_own(self, head: int) -> str | None:
        """The item key of a live claim of ours on ``head`` in the local mirror (None: the mirror shows none)."""
        for row in self._local.claims():
            if row.mention_id == head and row.holder == self.member:
                return row.item_key
        return None

    def _key(self, head: int) -> str | None:
        return self._local.item_keys([head]).get(head)

    def _view(self, head: int, row: ClaimRow) -> ClaimView:
        return ClaimView(head, row.holder, row.claimed_at, row.expires_at, row.holder == self.member)

    async def _renew(self, head: int, entry: _Open) -> None:
        renewed = await self._call(lambda: self._repo.renew(entry.item_key, self.member, self.ttl))
        if renewed is False and self._open.get(head) is entry:
            # Lost meanwhile (it expired and a colleague took it, or a supervisor broke it): claim again, which
            # takes it back if free or shows the colleague's.
            del self._open[head]
            await self.claim(head)

    async def _release(self, key: str) -> None:
        if await self._call(lambda: self._repo.release(key, self.member), quiet=True) is not None:
            await self.refresh()

    def _spawn(self, coro: Coroutine[Any, Any, object], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _quietly(self, work: Awaitable[object]) -> None:
        try:
            await work
        except StorageError as exc:
            log.info("team catch-up failed: %s", exc)

    async def _call(self, work: Callable[[], Awaitable[_T]], *, quiet: bool = False) -> _T | None:
        """Run a call on the team server; None when it could not be made (then ``_failed`` is set).

        Unreachable marks this service offline (the window's advice says so) until a call succeeds again.
        """
        self._failed = True
        try:
            result = await work()
        except TeamUnavailable as exc:
            self._unreachable = True
            (log.debug if quiet else log.info)("team server unreachable: %s", exc)
            return None
        except TeamRefused as exc:
            self._unreachable = False
            log.warning("the team server refused: %s", exc)
            return None
        except StorageError as exc:
            self._unreachable = False
            log.warning("team claim call failed: %s", exc)
            return None
        self._unreachable = False
        self._failed = False
        return result


#: Why a reply waits while the team server is unreachable.
_OFFLINE_HOLD = (
    "Waiting for the team server: a colleague may be answering this customer. "
    "It leaves once the team is reachable, or now if you send it anyway."
)


def _clock_time(at: float) -> str:
    """``14:02``: a time of day in this machine's zone, as the agent reads it."""
    return time.strftime("%H:%M", time.localtime(at))


class TeamSendGate:
    """The outbox's :class:`~console.replies.outbox.SendGate` in team mode: record the send on the server first.

    ``ClaimRepo.record_send`` locks the item, checks the claim and the latest recorded reply, and records ours
    (``reply_sending``, idempotent by the reply key) in one transaction; only then does the outbox post. So two
    members can never both pass, and a retry after a crash in ``sending`` is recorded again harmlessly.
    """

    def __init__(
        self,
        repo: ClaimRepo,
        local: TeamLocalRepo,
        member: str,
        *,
        catch_up: Callable[[], Awaitable[object]] | None = None,
        claims: ClaimService | None = None,
        reachable: Callable[[], bool] | None = None,
    ) -> None:
        """Wire the gate.

        Args:
            repo: Claims on the team server (``record_send``).
            local: The local copy (the item key of a mention).
            member: This member's name.
            catch_up: Push pending changes (``Replicator.sync_once``): the server does not know the item yet.
            claims: The claim service, told when the server is (un)reachable so the window's advice agrees.
            reachable: Whether the replicator reaches the team server now; while it says no, the gate answers at
                once (HOLD, or PROCEED when sent anyway) instead of waiting for a connection attempt to time out
                on every send. The replicator keeps probing and says when the server is back.
        """
        self._repo = repo
        self._local = local
        self.member = member
        self._catch_up = catch_up
        self._claims = claims
        self._reachable_now = reachable
        self._reopen_listeners: list[Callable[[], object]] = []

    def on_reopen(self, listener: Callable[[], object]) -> None:
        """Call ``listener()`` when the team server is reachable again (the outbox then tries the replies this
        gate held at once: :class:`~console.replies.outbox.ReopeningGate`)."""
        self._reopen_listeners.append(listener)

    def reopened(self) -> None:
        """The team server can be reached again (``TeamService``, on the replicator's mode change): tell the
        listeners, so a held reply leaves within a second of the server's return, not after the retry delay."""
        for listener in list(self._reopen_listeners):
            try:
                listener()
            except Exception:  # a listener's bug must not break the team service
                log.exception("send gate reopen listener failed")

    async def check(self, reply: ReplyRow, mention: MentionRow, *, override: bool) -> GateVerdict:
        """Record ``reply`` on the team server and say whether it may leave (see the class docstring).

        Never raises: an unreachable server is HOLD (PROCEED when the agent chose to send anyway).
        """
        head = mention.id if mention.head_id is None else mention.head_id
        key = self._local.item_keys([head]).get(head)
        if key is None:
            return GateVerdict.proceed()  # not a shared item (nothing to collide with)
        if self._reachable_now is not None and not self._reachable_now():
            return GateVerdict.proceed() if override else GateVerdict.hold(_OFFLINE_HOLD)
        verdict: SendVerdict | None = None
        for attempt in range(2):
            try:
                verdict = await self._repo.record_send(
                    key, reply.idempotency_key, self.member, text=reply.text, purpose=reply.purpose, override=override
                )
            except TeamUnavailable:
                self._reachable(False)
                return GateVerdict.proceed() if override else GateVerdict.hold(_OFFLINE_HOLD)
            except StorageError as exc:
                log.warning("recording reply %s on the team server failed: %s", reply.id, exc)
                self._reachable(True)
                if override:
                    return GateVerdict.proceed()
                return GateVerdict.hold("Waiting: the team server could not record this reply yet.")
            self._reachable(True)
            if verdict.outcome is Recorded.UNKNOWN and attempt == 0 and self._catch_up is not None:
                # The item has not reached the server yet (this copy fetched it and has not pushed it): push, retry.
                try:
                    await self._catch_up()
                except StorageError as exc:
                    log.info("pushing before a send failed: %s", exc)
                continue
            break
        assert verdict is not None
        return self._verdict(verdict, override=override)

    def _verdict(self, verdict: SendVerdict, *, override: bool) -> GateVerdict:
        if verdict.outcome is Recorded.OK or override:
            return GateVerdict.proceed()
        by = verdict.by or ""
        if verdict.outcome is Recorded.CLAIMED:
            return GateVerdict.refused(
                f"{by} is replying to this customer; your reply was not sent. Edit it, or send it anyway.", by
            )
        if verdict.outcome is Recorded.ANSWERED:
            if by == self.member:
                return GateVerdict.proceed()  # our own earlier reply (a holding reply, a correction): no collision
            when = f" at {_clock_time(verdict.at)}" if verdict.at else ""
            if not by:  # answered on the channel (a reply seen there), by no member
                return GateVerdict.refused(f"This customer was answered{when}; your reply was not sent.", by)
            return GateVerdict.refused(f"{by} answered this{when}; your reply was not sent.", by)
        return GateVerdict.hold("Waiting: the team server does not know this conversation yet.")

    def _reachable(self, yes: bool) -> None:
        if self._claims is not None:
            self._claims.mark_reachable(yes)
