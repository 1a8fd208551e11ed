"""Replication between the local copy and the team log: push own changes, pull everyone's (docs/TEAM.md).

Push: own shared events and stored messages past the watermarks, in batches of :data:`PUSH_BATCH`, each with a
uid derived from the member and the local id (``console/team/keys.py``), so a retried push sends the same uids
and the server keeps each once; the watermark is saved only after the server committed (at-least-once plus a
unique uid is exactly once).

Pull: ``LISTEN <schema>_events`` and ``<schema>_claims`` on a dedicated connection; a notification (a hint,
never data) makes the replicator read ``since(cursor)``; a safety pull runs every :data:`SAFETY_PULL_S`.
Where notifications cannot work (a transaction-mode pooler: a NOTIFY to ourselves does not come back within
:data:`NOTIFY_PROBE_S`, or ``notify=False``), it polls every :data:`POLL_S` and says so. When the server is
out of reach, local work goes on and the status says "offline" since when and why; on reconnect it pushes and
catches up. :meth:`Replicator.run` never dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from console.ports import Clock
from console.sla.engine import SlaEngine
from console.team.applier import Applier, ApplyReport, follow_through
from console.team.keys import local_event_uid, mention_uid
from storage.errors import StorageError, TeamRefused, TeamUnavailable
from storage.team.claims import ClaimRepo
from storage.team.connect import TeamConnection, TeamPool
from storage.team.events import TeamEvent, TeamEventRepo, reply_event_uid
from storage.team.notify import Notice, TeamListener, notify
from storage.team_local import OutgoingEvent, OutgoingMention, SharedEvent, TeamLocalRepo

log = logging.getLogger(__name__)

Mode = Literal["live", "polling", "offline", "connecting"]
_Row = TypeVar("_Row")

#: Own changes sent in one INSERT (one transaction on the server).
PUSH_BATCH = 500
#: Own changes read from the local copy in one go, on the loop (a few milliseconds each).
READ_SLICE = 100
#: Team events read in one page (the page's rows are parsed on the loop as they arrive: 2,000 took 100 ms and
#: more on a busy machine).
PULL_PAGE = 500
#: Pulled events converted between two hand-backs of the loop.
CONVERT_SLICE = 200
#: With LISTEN working, a pull runs at least this often anyway (a lost notification costs latency, never data).
SAFETY_PULL_S = 30.0
#: Without LISTEN, the log is read this often.
POLL_S = 2.0
#: How long the self-NOTIFY at connect may take before notifications are declared unavailable.
NOTIFY_PROBE_S = 2.0
#: While polling because the probe failed (not because notifications are switched off), probe again this often:
#: on a busy machine the first probe can time out, and the copy must not stay polling for the whole session.
REPROBE_S = 60.0
#: Reconnect backoff: first wait and cap (seconds).
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0

#: Local ids in event data that mean nothing on another machine (their shared names are added instead).
_LOCAL_ID_FIELDS = ("reply_id", "survey_id", "message", "correction_id", "shift_id", "by_message")


@dataclass(frozen=True, slots=True)
class PushEvent:
    """One event on its way to the team log."""

    uid: str
    author: str
    at: int
    kind: str
    item_key: str | None
    data: dict[str, Any] = field(default_factory=dict)


def shift_uid(member_uuid: str, shift_id: int) -> str:
    """The shared name of this member's local shift ``shift_id``."""
    return str(uuid.uuid5(uuid.UUID(member_uuid), f"shift:{shift_id}"))


def push_event(change: OutgoingEvent, *, member: str, member_uuid: str) -> PushEvent:
    """The team event for one own local change: local ids replaced by shared names, authored by the member.

    The local actor (the agent's name, or "sla" for the engine's own records) is kept as ``by`` when it is not
    the member: the server's author is always the member who pushed (row-level security checks it).
    """
    data = dict(change.data)
    shift_id = data.get("shift_id")
    if isinstance(shift_id, int):
        data["shift_uid"] = shift_uid(member_uuid, shift_id)
    for name in _LOCAL_ID_FIELDS:
        data.pop(name, None)
    if change.actor != member:
        data["by"] = change.actor
    uid = local_event_uid(member_uuid, change.event_id)
    reply_key = data.get("reply_key")
    if change.kind == "send_anyway" and isinstance(reply_key, str):
        # The uid ClaimRepo.record_send gives the server's own record of the same choice: one audit entry
        # however the override reached the server (sent online, or pushed after working offline).
        uid = str(reply_event_uid("send_anyway", reply_key))
    return PushEvent(uid, member, change.at, change.kind, change.item_key, data)


def push_mention(mention: OutgoingMention, *, member: str) -> PushEvent:
    """The ``mention`` event of a locally stored message: its uid is the same on every machine."""
    return PushEvent(
        mention_uid(mention.item_key), member, int(mention.data["posted_at"]), "mention", mention.item_key,
        dict(mention.data),
    )  # fmt: skip


@dataclass(frozen=True)
class TeamStatus:
    """The team line of the health strip and File → Team… (docs/TEAM.md)."""

    member: str
    role: str  # 'agent' | 'supervisor' | 'owner'
    server: str  # host:port/db, never a password
    mode: Mode
    since: float  # when the mode began (epoch seconds)
    reason: str  # plain words for offline and polling
    to_push: int  # own changes waiting to go up
    conflicts: int  # own changes a colleague's overrode (or the other way round), to show


@dataclass(frozen=True)
class TeamChange:
    """What a listener hears: items changed by the team (an applied page) or claims that changed (mention ids)."""

    report: ApplyReport | None = None
    claims: tuple[int, ...] = ()

    @property
    def mention_ids(self) -> tuple[int, ...]:
        """Every local item this change touched (for the window's refresh)."""
        ids: list[int] = list(self.claims)
        if self.report is not None:
            ids += list(self.report.new_mentions) + list(self.report.changed)
        return tuple(dict.fromkeys(ids))


class Replicator:
    """Push own changes, pull the team's, keep the claims mirror; one per running team copy.

    :meth:`run` is the long-lived task (started by the team service, cancelled to stop); :meth:`sync_once` is one
    push-then-pull round for tests, the command line and ``team status``.
    """

    def __init__(
        self,
        *,
        local: TeamLocalRepo,
        applier: Applier,
        member: str,
        member_uuid: str,
        role: str,
        server: str,
        schema: str,
        open_pool: Callable[[], Awaitable[TeamPool]],
        open_listener: Callable[[], Awaitable[TeamConnection]],
        clock: Clock,
        sla: SlaEngine | None = None,
        notify: bool = True,
        poll_s: float = POLL_S,
        safety_s: float = SAFETY_PULL_S,
        probe_s: float = NOTIFY_PROBE_S,
        reprobe_s: float = REPROBE_S,
    ) -> None:
        """Args:
        local: the team tables of the local copy.
        applier: applies pulled pages to the local copy.
        member: this member's name (the author of every pushed event).
        member_uuid: this copy's member uuid (own event uids).
        role: 'agent', 'supervisor' or 'owner', for the status.
        server: ``host:port/db`` for the status.
        schema: the team schema (notification channels).
        open_pool: opens the pool of connections to the team database (``connect.open_pool``).
        open_listener: opens the dedicated LISTEN connection (``connect.listen_connection``).
        clock: when modes begin.
        sla: told what applied events mean for deadlines (None: nothing to tell, as in some tests).
        notify: False where LISTEN/NOTIFY cannot work (a transaction-mode pooler): poll instead.
        poll_s, safety_s, probe_s: the polling interval, the safety pull and the NOTIFY probe's wait.
        reprobe_s: how often a copy polling because the probe failed probes again.
        """
        self._local = local
        self._applier = applier
        self._member = member
        self._member_uuid = member_uuid
        self._role = role
        self._server = server
        self._schema = schema
        self._open_pool = open_pool
        self._open_listener = open_listener
        self._clock = clock
        self._sla = sla
        self._notify = notify
        self._poll_s = poll_s
        self._safety_s = safety_s
        self._probe_s = probe_s
        self._reprobe_s = reprobe_s
        self._reprobe_at: float | None = None  # loop time of the next probe while polling after a failed one
        self._pool: TeamPool | None = None
        self._listener: TeamListener | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._probe: tuple[str, asyncio.Event] | None = None
        self._kick: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._listeners: list[Callable[[TeamChange], None]] = []
        self._mode_listeners: list[Callable[[Mode, Mode], None]] = []
        self._mode: Mode = "connecting"
        self._since = clock.now()
        self._reason = ""

    # ------------------------------------------------------------------ what others call
    def status(self) -> TeamStatus:
        """The team line's facts now (local reads only)."""
        return TeamStatus(
            self._member, self._role, self._server, self._mode, self._since, self._reason,
            self._local.to_push(), self._local.conflict_count(unseen_only=False),
        )  # fmt: skip

    @property
    def mode(self) -> Mode:
        return self._mode

    def subscribe(self, listener: Callable[[TeamChange], None]) -> None:
        """Call ``listener`` on the loop after each applied page that changed something and each claims change."""
        self._listeners.append(listener)

    def on_mode(self, listener: Callable[[Mode, Mode], None]) -> None:
        """Call ``listener(was, now)`` on the loop each time the mode changes (TeamService: the server is back, so
        replies the send gate held may be asked about again at once)."""
        self._mode_listeners.append(listener)

    def wake(self) -> None:
        """A local change happened: push soon (no await; safe before :meth:`run` starts)."""
        if self._kick is not None:
            self._kick.set()

    async def sync_once(self) -> ApplyReport:
        """Push own changes, then pull until caught up; the claims mirror is refreshed too.

        Returns:
            What the pull applied.

        Raises:
            StorageError: the team database could not be reached (the mode becomes "offline") or the local copy
                could not be written.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            try:
                pool = await self._ensure_pool()
                await self._push(pool)
                report = await self._pull(pool)
                await self._refresh_claims(pool)
            except StorageError as exc:
                if isinstance(exc, TeamUnavailable):
                    await self._drop_pool()
                self._set_mode("offline", _plain(exc))
                raise
            if self._mode in ("offline", "connecting"):
                if self._kick is None:  # a one-off round (command line, tests): the server answered
                    self._set_mode("live")
                else:
                    self._set_mode("live" if self._listen_task is not None else "polling", self._polling_reason())
            return report

    async def run(self) -> None:
        """Replicate until cancelled; never dies: a lost server means "offline" and a reconnect with backoff."""
        self._kick = asyncio.Event()
        backoff = BACKOFF_FIRST_S
        try:
            while True:
                try:
                    await self._connect()
                    backoff = BACKOFF_FIRST_S
                    await self._serve()
                except asyncio.CancelledError:
                    raise
                except StorageError as exc:
                    self._set_mode("offline", _plain(exc))
                except Exception as exc:  # a bug must not end replication: log it, back off, try again
                    log.exception("team replication failed")
                    self._set_mode("offline", f"unexpected error: {exc}")
                await self._disconnect()
                await self._pause(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
        finally:
            await self._disconnect()

    async def aclose(self) -> None:
        """Close the connections and the applier's worker (after cancelling :meth:`run`)."""
        await self._disconnect()
        await self._applier.aclose()

    # ------------------------------------------------------------------ connection and modes
    def _set_mode(self, mode: Mode, reason: str = "") -> None:
        was = self._mode
        if mode != was:
            self._since = self._clock.now()
            log.info("team: %s%s", mode, f" ({reason})" if reason else "")
        self._mode = mode
        self._reason = reason
        if mode != was:
            for listener in list(self._mode_listeners):
                try:
                    listener(was, mode)
                except Exception:  # a listener's bug must not stop replication
                    log.exception("team mode listener failed")

    def _polling_reason(self) -> str:
        if self._listen_task is not None:
            return ""
        if not self._notify:
            return f"notifications are switched off for this team; reading the team's changes every {self._poll_s:g} s"
        return (
            f"notifications unavailable (behind a pooler?): a test notification did not come back within "
            f"{self._probe_s:g} s; reading the team's changes every {self._poll_s:g} s"
        )

    async def _ensure_pool(self) -> TeamPool:
        if self._pool is None:
            self._pool = await self._open_pool()
        return self._pool

    async def _drop_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                await pool.close()

    async def _connect(self) -> None:
        """Open the pool and, unless switched off, the listener; probe that a NOTIFY comes back."""
        pool = await self._ensure_pool()
        self._reprobe_at = None
        if self._notify and await self._listen(pool):
            self._set_mode("live")
        else:
            if self._notify:
                self._reprobe_at = asyncio.get_running_loop().time() + self._reprobe_s
            self._set_mode("polling", self._polling_reason())

    async def _reprobe(self) -> None:
        """Polling because the probe failed: when it is time, probe again and go live if a notification comes
        back (a listener that cannot even connect leaves the copy polling until the next try)."""
        loop = asyncio.get_running_loop()
        if self._reprobe_at is None or self._listen_task is not None or loop.time() < self._reprobe_at:
            return
        self._reprobe_at = loop.time() + self._reprobe_s
        try:
            live = await self._listen(await self._ensure_pool())
        except StorageError as exc:
            await self._stop_listening()
            log.info("team: notifications still unavailable (%s)", _plain(exc))
            return
        if live:
            self._reprobe_at = None
            self._set_mode("live")

    async def _listen(self, pool: TeamPool) -> bool:
        listener = TeamListener(await self._open_listener(), self._schema)
        try:
            await listener.start()
        except BaseException:
            await listener.aclose()
            raise
        self._listener = listener
        self._listen_task = asyncio.create_task(listener.run(self._on_notice), name="team-listen")
        token = f"probe:{uuid.uuid4()}"
        arrived = asyncio.Event()
        self._probe = (token, arrived)
        try:
            await notify(pool, self._schema, "events", token)
            await asyncio.wait_for(arrived.wait(), self._probe_s)
            return True
        except TimeoutError:
            await self._stop_listening()
            return False
        finally:
            self._probe = None

    def _on_notice(self, notice: Notice) -> None:
        if self._probe is not None and notice.payload == self._probe[0]:
            self._probe[1].set()
            return
        if self._kick is not None:
            self._kick.set()

    async def _stop_listening(self) -> None:
        task, self._listen_task = self._listen_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.aclose()

    async def _disconnect(self) -> None:
        await self._stop_listening()
        await self._drop_pool()

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` (a reconnect backoff); a local change does not cut it short: nothing could be sent."""
        await asyncio.sleep(seconds)

    async def _serve(self) -> None:
        """Sync, then wait for a notification, a local change or the interval; until the connection fails."""
        assert self._kick is not None
        while True:
            self._kick.clear()
            await self.sync_once()  # a claims notification lands here too: every round refreshes the mirror
            await self._reprobe()
            interval = self._safety_s if self._listen_task is not None else self._poll_s
            waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._kick.wait())}
            if self._listen_task is not None:
                waiters.add(self._listen_task)
            _, pending = await asyncio.wait(waiters, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
            for future in pending:
                if future is not self._listen_task:
                    future.cancel()
            if self._listen_task is not None and self._listen_task.done():
                task, self._listen_task = self._listen_task, None
                task.result()  # raises TeamUnavailable: reconnect
                raise TeamUnavailable("the team's notifications stopped")

    # ------------------------------------------------------------------ push and pull
    async def _push(self, pool: TeamPool) -> int:
        """Own messages first (their items must exist before changes to them), then own changes, by batches."""
        repo = TeamEventRepo(pool, self._schema)
        sent = 0
        while True:
            marks = self._local.watermarks()
            mentions = await _read_sliced(self._local.outgoing_mentions, marks.pushed_mention_id, _mention_id)
            if mentions:
                held = self._local.applied_seqs(mention_uid(m.item_key) for m in mentions)
                batch = [push_mention(m, member=self._member) for m in mentions if mention_uid(m.item_key) not in held]
                accepted, added = await self._append(repo, batch)
                sent += added
                self._local.record_pushed(
                    [(p.uid, p.kind, p.item_key) for p in accepted], mention_id=mentions[-1].mention_id
                )
                continue
            changes = await _read_sliced(self._local.outgoing_events, marks.pushed_event_id, _event_id)
            if not changes:
                return sent
            batch = [push_event(c, member=self._member, member_uuid=self._member_uuid) for c in changes]
            accepted, added = await self._append(repo, batch)
            sent += added
            self._local.record_pushed([(p.uid, p.kind, p.item_key) for p in accepted], event_id=changes[-1].event_id)

    async def _append(self, repo: TeamEventRepo, batch: list[PushEvent]) -> tuple[list[PushEvent], int]:
        """Append ``batch``; when the server refuses it (a kind this member's role may not write), event by
        event: each refused one is recorded as a conflict and passed over, so one refusal never stalls the push.

        Returns:
            The events the server holds now, and how many of them are new.

        Raises:
            TeamRefused: every event of the batch was refused (this login may write nothing): nothing is passed over.
            TeamUnavailable: the server went away; the watermark stays.
        """
        try:
            return batch, await repo.append([_team_event(p) for p in batch])
        except TeamRefused:
            if len(batch) == 1:
                raise
        accepted: list[PushEvent] = []
        refused: list[tuple[PushEvent, TeamRefused]] = []
        added = 0
        for p in batch:
            try:
                added += await repo.append([_team_event(p)])
                accepted.append(p)
            except TeamRefused as exc:
                refused.append((p, exc))
        if not accepted:
            raise refused[0][1]
        for p, refusal in refused:
            self._refused(p, refusal)
        return accepted, added

    def _refused(self, event: PushEvent, exc: TeamRefused) -> None:
        mention_id = self._local.mention_ids([event.item_key]).get(event.item_key) if event.item_key else None
        self._local.add_conflict(
            at=event.at, mention_id=mention_id, item_key=event.item_key, kind=event.kind,
            ours={"uid": event.uid, **event.data}, theirs={}, winner="server",
            reason=f"The team refused this change: {_plain(exc)}",
        )  # fmt: skip
        log.warning("team: %s %s refused by the server", event.kind, event.uid)

    async def _pull(self, pool: TeamPool) -> ApplyReport:
        repo = TeamEventRepo(pool, self._schema)
        total = ApplyReport()
        while True:
            page = await repo.since(self._local.watermarks().pulled_seq, PULL_PAGE)
            if not page:
                return total
            report = await self._applier.apply(await _converted(page))
            if self._sla is not None:
                await follow_through(report, self._sla, self._local)
            if not report.empty:
                self._tell(TeamChange(report=report))
            total = total.merged(report)
            if len(page) < PULL_PAGE:
                return total

    async def _refresh_claims(self, pool: TeamPool) -> None:
        rows = await ClaimRepo(pool, self._schema).active()
        changed = self._local.replace_claims((r.item_key, r.holder, r.claimed_at, r.expires_at) for r in rows)
        if changed:
            self._tell(TeamChange(claims=tuple(changed)))

    def _tell(self, change: TeamChange) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:  # a listener's bug must not stop replication
                log.exception("team change listener failed")


async def _read_sliced(read: Callable[[int, int], list[_Row]], after: int, key: Callable[[_Row], int]) -> list[_Row]:
    """Up to :data:`PUSH_BATCH` rows after ``after``, read :data:`READ_SLICE` at a time with the loop handed back
    in between (reading and translating 500 changes at once takes longer than a frame on a busy machine)."""
    rows: list[_Row] = []
    while len(rows) < PUSH_BATCH:
        part = read(after, min(READ_SLICE, PUSH_BATCH - len(rows)))
        rows += part
        if len(part) < READ_SLICE:
            break
        after = key(part[-1])
        await asyncio.sleep(0)
    return rows


async def _converted(page: list[TeamEvent]) -> list[SharedEvent]:
    """The pulled page as the applier takes it, :data:`CONVERT_SLICE` events at a time with the loop handed back
    in between (a catch-up converts thousands)."""
    out: list[SharedEvent] = []
    for start in range(0, len(page), CONVERT_SLICE):
        if start:
            await asyncio.sleep(0)
        out += [_shared_event(e) for e in page[start : start + CONVERT_SLICE]]
    return out


def _mention_id(row: OutgoingMention) -> int:
    return row.mention_id


def _event_id(row: OutgoingEvent) -> int:
    return row.event_id


def _team_event(p: PushEvent) -> TeamEvent:
    return TeamEvent(uid=uuid.UUID(p.uid), author=p.author, at=p.at, kind=p.kind, item_key=p.item_key, data=p.data)


def _shared_event(e: TeamEvent) -> SharedEvent:
    return SharedEvent(int(e.seq or 0), str(e.uid), e.author, e.at, e.kind, e.item_key, e.data)


def _plain(exc: StorageError) -> str:
    """The error's words for the status line (never a password: storage/team keeps them out of messages)."""
    return str(exc) or type(exc).__name__
