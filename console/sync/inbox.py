"""The sync engine: poll each account's connector, store each batch in one transaction, then save the cursor."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import random
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from console.channels.base import Backfills, Batch, Connector, InboundItem, RateLimitInfo
from console.channels.errors import AuthExpired, ChannelError, Permanent, RateLimited, Transient, Unreachable
from console.model import SyncReport
from console.ports import Clock
from console.sla.bands import SlaPolicy
from console.sync.own_posts import OwnPostsReader
from console.sync.store_worker import BatchStore, InlineStore
from storage.accounts import AccountRepo, SyncStateRepo
from storage.errors import StorageError
from storage.health import HealthRepo, QuarantineEntry
from storage.mentions import DeadlinePlan, MentionRepo
from storage.rows import AccountRow, Health, UpsertResult

log = logging.getLogger(__name__)

#: Backoff cap (channels.md §0: about 15 minutes).
MAX_BACKOFF = 15 * 60
#: While no connection can be made at all (offline), probe at least this often so reconnecting is quick.
MAX_UNREACHABLE_BACKOFF = 2 * 60
#: Consecutive transient failures after which a retrying (degraded) account is shown as failing.
FAILING_AFTER = 3
#: A batch at least this big means a backlog: poll again right away instead of waiting for the interval.
CATCH_UP_BATCH = 500
#: How far back a first sync reads, where the channel's API allows (issue 20, sync 1; the app takes the setting).
DEFAULT_HORIZON_SECONDS = 7 * 24 * 3600
#: Items stored per transaction, a catch-up batch: the size `make bench` measures ingest at (about 15 ms of
#: work on the store's worker thread; stored on the loop, as in tests, it stays well under the 50 ms stall).
STORE_CHUNK = CATCH_UP_BATCH


def backoff_seconds(failures: int, *, base: float, rng: random.Random, cap: float = MAX_BACKOFF) -> int:
    """Exponential backoff with full jitter in its upper half, capped at ``cap`` (default ``MAX_BACKOFF``).

    Args:
        failures: Consecutive failures so far, including this one (1 = the first).
        base: The first delay's ceiling, in seconds.
        rng: Source of the jitter (seeded in tests).
        cap: Upper bound of the delay.

    Returns:
        Whole seconds to wait, at least 1.
    """
    ceiling = min(cap, base * (2 ** max(0, failures - 1)))
    return max(1, int(ceiling / 2 + rng.random() * ceiling / 2))


def throttle_until(info: RateLimitInfo | None, now: float) -> float | None:
    """When the next request may go out given the channel's budget, or None when there is no need to wait.

    With at most 10 % of the budget left, the remaining requests are spread evenly until the reset;
    with none left, nothing goes out before the reset (channels.md §0 "Rate limits").

    Args:
        info: The request budget the latest fetch reported (its batch, or the error it raised).
        now: The current epoch time.

    Returns:
        Epoch seconds, or None.
    """
    if info is None or not info.should_throttle or info.reset_at is None or info.reset_at <= now:
        return None
    if info.remaining <= 0:
        return info.reset_at
    return now + (info.reset_at - now) / info.remaining


def _rejected_of(batch: Batch) -> list[QuarantineEntry]:
    """The malformed entries the fetch left out, raw, with their parse errors (for the quarantine)."""
    entries = []
    for rejected in batch.rejected:
        try:
            text = json.dumps(rejected.raw, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError):
            text = repr(rejected.raw)
        entries.append(QuarantineEntry(rejected.external_id, rejected.reason, text))
    return entries


class PollGate(Protocol):
    """Whether this machine polls an account now (team mode: one poller per channel account, docs/TEAM.md).

    The poller owns this port so sync never imports the team package; team mode fills it (the lease keeper,
    ``console.team.leases.LeaseKeeper``), solo leaves it None and every account is polled.
    """

    def may_poll(self, account_id: int) -> bool:
        """True when this machine should poll the account now."""
        ...

    def refusal(self, account_id: int) -> str:
        """Why it should not, for the account's health line ("Polled by Sam's machine")."""
        ...


@dataclass
class Poller:
    """Polls every enabled account on its own persisted schedule. One instance per app; its task is owned.

    Order of precedence for the next attempt: the channel's Retry-After / reset time, then the throttle
    when the request budget runs low, then exponential backoff with jitter, then the poll interval. The
    schedule (next attempt, consecutive failures) lives in ``sync_state``, so a restart resumes it.
    """

    mentions: MentionRepo
    accounts: AccountRepo
    sync_state: SyncStateRepo
    connectors: Mapping[int, Connector]
    clock: Clock
    policy: SlaPolicy = field(default_factory=SlaPolicy)
    #: Per-channel deadline planner (SlaEngine.planner); ``policy.plan`` when absent.
    planner: Callable[[str], DeadlinePlan] | None = None
    interval: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    health: HealthRepo | None = None
    #: Where batches are stored: the app's worker thread (``BackgroundStore``); None stores through an
    #: ``InlineStore`` on ``mentions``' own connection (an in-memory database). Same conversion, same quarantine.
    store: BatchStore | None = None
    #: How far back a first sync reads (seconds), on channels whose API can page back in time.
    horizon: float = DEFAULT_HORIZON_SECONDS
    #: Team mode: accounts another member's machine polls are skipped (None when solo).
    poll_gate: PollGate | None = None
    #: Reads the account's own replies after each caught-up poll (replies seen on the channel, #22 item 5).
    own_posts: OwnPostsReader | None = None
    _listeners: list[Callable[[SyncReport], None]] = field(default_factory=list, init=False)
    _wake: asyncio.Event | None = field(default=None, init=False)
    _last: dict[int, SyncReport] = field(default_factory=dict, init=False)
    _offline_since: int | None = field(default=None, init=False)
    #: An account stopped at its batch limit with more waiting: the run loop goes on without its pause.
    _backlog: bool = field(default=False, init=False)
    _caught_up: dict[int, int] = field(default_factory=dict, init=False)
    _batches: BatchStore = field(init=False)

    def __post_init__(self) -> None:
        self._batches = self.store if self.store is not None else InlineStore(self.mentions)

    def _plan(self, channel: str) -> DeadlinePlan:
        return self.planner(channel) if self.planner is not None else self.policy.plan

    def subscribe(self, listener: Callable[[SyncReport], None]) -> None:
        self._listeners.append(listener)

    @property
    def offline_since(self) -> int | None:
        """Since when no account's channel could be reached (None while any one answers)."""
        return self._offline_since

    def last_report(self, account_id: int) -> SyncReport | None:
        return self._last.get(account_id)

    def _emit(self, report: SyncReport) -> SyncReport:
        self._last[report.account_id] = report
        synced = [a.id for a in self.accounts.list(enabled_only=True) if a.id in self.connectors]
        latest = [self._last.get(account_id) for account_id in synced]
        if latest and all(r is not None and r.unreachable for r in latest):
            if self._offline_since is None:
                self._offline_since = min(r.at for r in latest if r is not None)
        else:
            self._offline_since = None
        if report.offline_since != self._offline_since:
            report = dataclasses.replace(report, offline_since=self._offline_since)
            self._last[report.account_id] = report
        for listener in list(self._listeners):
            try:
                listener(report)
            except Exception:  # a broken listener must not stop sync
                log.exception("sync listener failed")
        return report

    def wake(self) -> None:
        """Poll every account now instead of waiting for its schedule (a rate limit is still honoured)."""
        if self._wake is not None:
            self._wake.set()

    def reschedule_now(self, account_id: int) -> None:
        """Make an account due now, e.g. after the agent signed in again; call :meth:`wake` to act at once."""
        self.sync_state.set_next_attempt(account_id, int(self.clock.now()))

    async def sync_account(self, account: AccountRow) -> SyncReport:
        """One poll of one account: fetch, store the batch in one transaction, only then save the cursor.

        Never raises (cancellation aside): channel and storage trouble, and any unexpected error (a bug in the
        store, a repository, the connector), come back as a report with ``error`` set, the account's health
        updated and the next attempt persisted, so a sync task never dies and the cause is logged (issue 21).
        """
        started = int(self.clock.now())
        try:
            return await self._poll_account(account)
        except Exception as exc:
            log.exception("sync of account %s failed unexpectedly", account.id)
            error = Permanent(f"Internal error while syncing: {exc!r}")
            try:
                return self._failed(account, error, started)
            except Exception:  # the health itself could not be saved (the database is gone): report it all the same
                log.exception("recording the failed sync of account %s failed too", account.id)
                return SyncReport(account.id, started, error=str(error), health=Health.FAILING)

    async def _poll_account(self, account: AccountRow) -> SyncReport:
        connector = self.connectors[account.id]
        state = self.sync_state.get(account.id)
        started = int(self.clock.now())
        cursor = state.cursor
        if cursor is None and isinstance(connector, Backfills):
            # A first sync reads the backlog back to the horizon, not only the newest page (issue 20, sync 1).
            cursor = connector.backfill_cursor(math.floor(started - self.horizon))
        try:
            batch = await connector.fetch_new(cursor)
        except ChannelError as exc:
            return self._failed(account, exc, started, exc.rate_limit)
        except Exception as exc:  # a connector bug must not stop the loop; it is reported like a failure
            log.exception("connector of account %s raised an untyped error", account.id)
            return self._failed(account, Permanent(f"Internal error while syncing: {exc!r}"), started)
        new = batch.items
        rejected = _rejected_of(batch)
        try:
            result = await self._store(account.id, new, rejected, channel=account.kind, fetched_at=started)
            quarantined = self.health.quarantine(account.id, rejected, at=started) if self.health else 0
            now = self.clock.now()
            due = math.ceil(now + self.interval)
            backlog = len(new) >= CATCH_UP_BATCH or batch.has_more
            backlog = backlog or (batch.backfill is not None and not batch.backfill.done)
            if backlog:
                due = math.floor(now)  # a backlog: keep going, batch by batch, each one visible as it lands
            throttle = throttle_until(batch.rate_limit, now)
            if throttle is not None:
                due = max(due, math.ceil(throttle))
            catching_up = backlog and due <= now
            self._backlog = self._backlog or catching_up
            next_at = due
            self.sync_state.record_success(account.id, cursor=batch.next_cursor, at=started, next_attempt_at=due)
        except StorageError as exc:
            # The cursor was not saved: the same items will be fetched again and deduplicated.
            log.error("storing a batch for account %s failed: %s", account.id, exc)
            return self._emit(SyncReport(account.id, started, fetched=len(new), error=str(exc), health=Health.FAILING))
        if rejected:
            log.warning("account %s: %d malformed item(s) quarantined", account.id, len(rejected))
        partial = batch.partial_error
        caught_up = self._caught_up.pop(account.id, 0) + len(result.inserted_ids)
        catching_up = catching_up and partial is None
        if catching_up:
            self._caught_up[account.id] = caught_up
        if partial is not None:
            # Some pages were stored and the cursor moved; the rest failed: schedule as a failure, and say how
            # much was kept (issue 20, sync 9: "stored 40, then the server failed on page 2").
            failed = self._failed(account, partial, started, batch.rate_limit, emit=False)
            progress = dataclasses.replace(
                failed,
                error=f"stored {len(result.inserted_ids)} of {len(new)} fetched, then {failed.error}",
                fetched=len(new),
                stored=len(result.inserted_ids),
                duplicates=result.duplicates,
                new_items=result.new_heads,
                follow_ups=result.follow_up_heads,
                quarantined=quarantined,
                backfill=batch.backfill,
            )
            return self._emit(progress)
        if self.own_posts is not None and not catching_up and throttle is None:
            # The brand's replies posted elsewhere, once the mentions they answer are stored (never raises).
            await self.own_posts.read(account, connector)
        if account.health is not Health.OK or account.health_reason:
            self.accounts.set_health(account.id, Health.OK)
        return self._emit(
            SyncReport(
                account.id,
                started,
                fetched=len(new),
                stored=len(result.inserted_ids),
                duplicates=result.duplicates,
                new_items=result.new_heads,
                follow_ups=result.follow_up_heads,
                next_attempt_at=next_at,
                quarantined=quarantined,
                throttled=throttle is not None,
                catching_up=catching_up,
                caught_up=caught_up,
                backfill=batch.backfill,
            )
        )

    async def store_items(self, account: AccountRow, items: list[InboundItem]) -> SyncReport:
        """Store items that did not come from a poll (quarantined ones read again) like a synced batch.

        The cursor and schedule are left alone; listeners get a report so the queue and the SLA engine
        take the new items in.

        Raises:
            StorageError: The write failed (items already kept stay kept; the rest are not stored).
        """
        now = int(self.clock.now())
        rejected: list[QuarantineEntry] = []
        result = await self._store(account.id, items, rejected, channel=account.kind, fetched_at=now)
        report = SyncReport(
            account.id,
            now,
            fetched=len(items),
            stored=len(result.inserted_ids),
            duplicates=result.duplicates,
            new_items=result.new_heads,
            follow_ups=result.follow_up_heads,
            health=account.health,
            offline_since=self._offline_since,
        )
        for listener in list(self._listeners):
            try:
                listener(report)
            except Exception:  # a broken listener must not lose the stored items
                log.exception("sync listener failed")
        return report

    async def _store(
        self,
        account_id: int,
        items: list[InboundItem],
        rejected: list[QuarantineEntry],
        *,
        channel: str,
        fetched_at: int,
    ) -> UpsertResult:
        """Store a batch chunk by chunk through the one store path (:class:`BatchStore`), yielding to the event
        loop between chunks (a backlog stays responsive).

        A failure part-way leaves earlier chunks stored and the cursor unsaved: the next poll fetches the same
        items again and the store deduplicates them.
        """
        plan = self._plan(channel)
        inserted: list[int] = []
        new_heads: list[int] = []
        follow_ups: list[int] = []
        duplicates = 0
        for start in range(0, max(len(items), 1), STORE_CHUNK):
            chunk = items[start : start + STORE_CHUNK]
            if start:
                await asyncio.sleep(0)
            part = await self._batches.store(
                account_id, chunk, channel=channel, fetched_at=fetched_at, plan=plan, rejected=rejected
            )
            inserted += part.inserted_ids
            new_heads += part.new_heads
            follow_ups += [i for i in part.follow_up_heads if i not in follow_ups]
            duplicates += part.duplicates
        return UpsertResult(tuple(inserted), tuple(new_heads), tuple(follow_ups), duplicates)

    def _failed(
        self,
        account: AccountRow,
        exc: ChannelError,
        now: int,
        rate_limit: RateLimitInfo | None = None,
        *,
        emit: bool = True,
    ) -> SyncReport:
        failures = self.sync_state.get(account.id).consecutive_failures + 1
        base = max(self.interval, 5.0)
        if isinstance(exc, RateLimited):
            health, next_at = Health.RATE_LIMITED, math.ceil(max(exc.retry_at, now + 1))
        elif isinstance(exc, AuthExpired):
            # Polling cannot fix a revoked token: retry rarely until the agent signs in again.
            health, next_at = Health.AUTH_EXPIRED, now + MAX_BACKOFF
        elif isinstance(exc, Permanent):
            health, next_at = Health.FAILING, now + backoff_seconds(failures, base=base, rng=self.rng)
        else:
            health = Health.FAILING if failures >= FAILING_AFTER else Health.DEGRADED
            cap = MAX_UNREACHABLE_BACKOFF if isinstance(exc, Unreachable) else MAX_BACKOFF
            next_at = now + backoff_seconds(failures, base=base, rng=self.rng, cap=cap)
        # The channel's own reset time comes before our backoff (a 5xx while the budget is spent).
        throttle = throttle_until(rate_limit, now)
        if throttle is not None and not isinstance(exc, AuthExpired):
            next_at = max(next_at, math.ceil(throttle))
        reason = str(exc)
        self.sync_state.record_failure(account.id, error=reason, next_attempt_at=next_at)
        if health is not account.health or reason != account.health_reason:
            self.accounts.set_health(account.id, health, reason)
        level = logging.INFO if isinstance(exc, Transient | RateLimited) else logging.WARNING
        log.log(level, "sync of account %s failed (%s): %s", account.id, type(exc).__name__, exc)
        report = SyncReport(
            account.id,
            now,
            error=reason,
            health=health,
            next_attempt_at=next_at,
            unreachable=isinstance(exc, Unreachable),
        )
        return self._emit(report) if emit else report

    async def sync_once(self) -> list[SyncReport]:
        """One pass over every enabled account that has a connector (``care-console sync --once``).

        Accounts sync concurrently, so one slow or failing server never delays another (issue 20, sync 3). An
        account the channel asked to wait (rate limited) is not called before then; its report says until when.
        A first sync's backfill runs to its end; listeners see each batch as it lands (progress).

        Returns:
            One report per account, in account order; a backfill's batches are added up in it.
        """
        enabled = self.accounts.list(enabled_only=True)
        accounts = [a for a in enabled if a.id in self.connectors and not self._polled_elsewhere(a)]
        return list(await asyncio.gather(*(self._sync_fully(account) for account in accounts)))

    def _polled_elsewhere(self, account: AccountRow) -> bool:
        """Team mode: another member's machine polls this account now; its health line says so, in plain words.

        The account stays OK (nothing is wrong with it); once this machine may poll it again, it is due at once
        (its schedule was left alone) and the first good poll clears the line.
        """
        if self.poll_gate is None or self.poll_gate.may_poll(account.id):
            return False
        reason = self.poll_gate.refusal(account.id)
        if account.health is not Health.OK or account.health_reason != reason:
            self.accounts.set_health(account.id, Health.OK, reason)
        return True

    async def _sync_fully(self, account: AccountRow) -> SyncReport:
        now = self.clock.now()
        due = self.sync_state.get(account.id).next_attempt_at
        if account.health is Health.RATE_LIMITED and due is not None and due > now:
            report = SyncReport(
                account.id,
                int(now),
                error="the channel asked this account to wait; it is not called again before the saved time",
                health=Health.RATE_LIMITED,
                next_attempt_at=due,
                offline_since=self._offline_since,
            )
            return self._emit(report)
        total = await self.sync_account(account)
        while total.ok and total.backfill is not None and not total.backfill.done and total.catching_up:
            account = self.accounts.get(account.id) or account
            more = await self.sync_account(account)
            total = dataclasses.replace(
                more,
                fetched=total.fetched + more.fetched,
                stored=total.stored + more.stored,
                duplicates=total.duplicates + more.duplicates,
                new_items=total.new_items + more.new_items,
                follow_ups=total.follow_ups + more.follow_ups,
                quarantined=total.quarantined + more.quarantined,
                error=None if more.ok else f"{more.error} ({total.stored + more.stored} stored by this sync in all)",
            )
        return total

    async def poll_due(self, *, forced: bool = False) -> float:
        """Poll each account whose persisted next attempt has come (every one when ``forced``).

        Even when forced, an account the channel asked to wait (rate limited) is left alone until then.

        Returns:
            The epoch time at which the next account is due (at most one interval away).
        """
        self._backlog = False
        polled, soonest = self._due(forced=forced)
        # Concurrently: one account's slow server or long backlog never holds up another's poll (issue 20, sync 3).
        for report in await asyncio.gather(*(self.sync_account(account) for account in polled)):
            if report.next_attempt_at is not None:
                soonest = min(soonest, report.next_attempt_at)
        return soonest

    def _due(self, *, forced: bool, busy: Collection[int] = ()) -> tuple[list[AccountRow], float]:
        """The accounts to poll now (not those in ``busy``), and when the next of the others is due."""
        now = self.clock.now()
        soonest = now + self.interval
        polled: list[AccountRow] = []
        for account in self.accounts.list(enabled_only=True):
            if account.id not in self.connectors or account.id in busy or self._polled_elsewhere(account):
                continue
            due = self.sync_state.get(account.id).next_attempt_at
            waiting_for_channel = account.health is Health.RATE_LIMITED and due is not None and due > now
            if due is None or due <= now or (forced and not waiting_for_channel):
                polled.append(account)
            elif due is not None:
                soonest = min(soonest, due)
        return polled, soonest

    async def run(self) -> None:
        """Poll forever, each account when its persisted ``next_attempt_at`` comes (so restarts don't hammer).

        Each account's poll is a task of its own: an account whose server stalls until the request deadline, or
        whose backlog takes many batches, never holds up another account's schedule (issue 20, sync 3). The
        poll tasks are owned here and cancelled with this one.
        """
        self._wake = asyncio.Event()
        wake = self._wake
        running: dict[int, asyncio.Task[SyncReport]] = {}
        forced = False
        try:
            while True:
                polled, soonest = self._due(forced=forced, busy=running.keys())
                for account in polled:
                    running[account.id] = asyncio.create_task(
                        self.sync_account(account), name=f"sync-account-{account.id}"
                    )
                # A finished poll may leave its account due at once (a backlog: the next batch follows), so the
                # loop wakes for it; otherwise the pause is at least half a second, so a clock that jumps never
                # makes a busy loop.
                delay = max(0.5, soonest - self.clock.now())
                wake.clear()
                waiter = asyncio.ensure_future(wake.wait())
                try:
                    done, _ = await asyncio.wait(
                        [waiter, *running.values()], timeout=delay, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    waiter.cancel()
                for account_id, task in list(running.items()):
                    if task.done():
                        del running[account_id]
                        if not task.cancelled() and task.exception() is not None:
                            log.error("sync of account %s crashed", account_id, exc_info=task.exception())
                forced = waiter in done  # a wake-up means "now": poll every account regardless of its schedule
        finally:
            for task in running.values():
                task.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)
