"""Channel health for the UI and the CLI: per-account state, the offline banner, and signing in again."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from console.channels.base import Backfill, Connector, InboundItem
from console.channels.errors import AuthExpired, ChannelError
from console.model import SyncReport
from console.ports import Clock
from console.sync.inbox import Poller
from console.sync.manual import MANUAL_KIND
from console.sync.quarantine import Rereader, default_rereaders
from console.sync.store_worker import to_new_mention
from console.wording import count
from storage.accounts import AccountRepo, SyncStateRepo
from storage.health import HealthRepo, QuarantineRow
from storage.rows import Health

log = logging.getLogger(__name__)

#: Severity order: the strip's overall colour is the worst account's.
_SEVERITY: dict[Health, int] = {
    Health.OK: 0,
    Health.DEGRADED: 1,
    Health.RATE_LIMITED: 2,
    Health.FAILING: 3,
    Health.AUTH_EXPIRED: 4,
}


@dataclass(frozen=True, slots=True)
class AccountHealth:
    """One account as the health strip shows it."""

    account_id: int
    kind: str
    handle: str
    display_name: str
    is_sandbox: bool
    health: Health
    reason: str  # the last failure, as a sentence ("" when OK)
    next_attempt_at: int | None  # retrying at (degraded/failing) or rate limited until
    last_success_at: int | None
    consecutive_failures: int
    quarantined: int  # malformed items kept aside for this account

    @property
    def needs_sign_in(self) -> bool:
        return self.health is Health.AUTH_EXPIRED


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    accounts: tuple[AccountHealth, ...]
    offline_since: int | None  # no channel reachable since then; None while online
    replies_waiting: int  # queued or sending replies in the outbox

    @property
    def offline(self) -> bool:
        return self.offline_since is not None

    @property
    def worst(self) -> Health:
        return max((a.health for a in self.accounts), key=_SEVERITY.__getitem__, default=Health.OK)


@dataclass(frozen=True, slots=True)
class QuarantinedItem:
    """An item that arrived but could not be read: what, from which account, why, and when."""

    id: int
    account_id: int
    handle: str
    kind: str
    external_id: str  # the channel's id of the entry, "?" when it had none
    error: str  # why it could not be read
    raw_json: str  # the entry exactly as received
    at: int  # when it arrived (epoch seconds)


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    """What reading quarantined items again did."""

    read: int  # left the quarantine (stored, or nothing to store)
    stored: int  # new messages in the store
    still_unreadable: int
    message: str


class ChannelHealth:
    """Reads account health and sync schedules; re-authenticates an account on the agent's one click."""

    def __init__(
        self,
        accounts: AccountRepo,
        sync_state: SyncStateRepo,
        health: HealthRepo,
        poller: Poller,
        connectors: Mapping[int, Connector],
        *,
        renew_token: Callable[[int], None] | None = None,
        on_signed_in: Callable[[int], None] | None = None,
        clock: Clock | None = None,
        rereaders: Mapping[str, Rereader] | None = None,
    ) -> None:
        """Wire the service.

        Args:
            accounts: Account rows (health, reason).
            sync_state: The persisted schedule.
            health: Quarantine and outbox counts.
            poller: Told to poll an account right after it signed in again.
            connectors: Per account; ``verify()`` checks a token.
            renew_token: Obtains a fresh token for an account and puts it in the secret store (the sandbox
                issues one directly; real channels run their sign-in flow). None: the token in the secret
                store is read again as it is.
            on_signed_in: Called with the account id once its token works again (e.g. so the outbox retries
                the replies that waited for the sign-in right away).
            clock: Time source (the poller's when absent).
            rereaders: Per channel kind, reads a quarantined entry again; :func:`default_rereaders` when absent.
        """
        self._accounts = accounts
        self._sync_state = sync_state
        self._health = health
        self._poller = poller
        self._connectors = connectors
        self._renew_token = renew_token
        self.on_signed_in = on_signed_in
        self._clock = clock if clock is not None else poller.clock
        self._rereaders = rereaders if rereaders is not None else default_rereaders()

    def snapshot(self) -> HealthSnapshot:
        """Every channel account's health with its schedule, the offline state and the replies waiting.

        The manual intake (posts added by hand) is no connection, so it has no health to show (issue 19)."""
        counts = self._health.quarantine_counts()
        rows = []
        for account in self._accounts.list():
            if account.kind == MANUAL_KIND:
                continue
            state = self._sync_state.get(account.id)
            rows.append(
                AccountHealth(
                    account_id=account.id,
                    kind=account.kind,
                    handle=account.handle,
                    display_name=account.display_name,
                    is_sandbox=account.is_sandbox,
                    health=account.health,
                    reason=account.health_reason,
                    next_attempt_at=state.next_attempt_at if account.health is not Health.OK else None,
                    last_success_at=state.last_success_at,
                    consecutive_failures=state.consecutive_failures,
                    quarantined=counts.get(account.id, 0),
                )
            )
        return HealthSnapshot(tuple(rows), self._poller.offline_since, self._health.waiting_replies())

    def quarantined(self, account_id: int | None = None) -> list[QuarantineRow]:
        """The malformed items kept aside, newest first."""
        return self._health.quarantined(account_id)

    def quarantined_items(self, account_id: int | None = None) -> list[QuarantinedItem]:
        """The malformed items kept aside, newest first, with their account's handle and channel (for the UI)."""
        accounts = {a.id: a for a in self._accounts.list()}
        items = []
        for row in self._health.quarantined(account_id):
            account = accounts.get(row.account_id)
            items.append(
                QuarantinedItem(
                    id=row.id,
                    account_id=row.account_id,
                    handle=account.handle if account is not None else "?",
                    kind=account.kind if account is not None else "?",
                    external_id=row.external_id,
                    error=row.error,
                    raw_json=row.raw_json,
                    at=row.at,
                )
            )
        return items

    def dismiss_quarantined(self, ids: Iterable[int]) -> int:
        """Drop unreadable items the agent has looked at; returns how many were removed."""
        return self._health.dismiss(ids)

    async def retry_quarantined(self, ids: Iterable[int]) -> RetryOutcome:
        """Read quarantined items again with this version's parsers (after an app update).

        Items that can be read now are stored like synced ones (deduplicated, threaded, with deadlines) and
        leave the quarantine; the others stay, with the newest reason. Nothing is lost either way.

        Args:
            ids: Quarantine ids.

        Returns:
            How many were stored, how many still cannot be read, and a sentence for the agent.
        """
        readable: dict[int, list[InboundItem]] = {}
        done: dict[int, list[int]] = {}
        still = 0
        for row in self._health.quarantined_by_ids(ids):
            account = self._accounts.get(row.account_id)
            reread = self._rereaders.get(account.kind) if account is not None else None
            if account is None or reread is None:
                still += 1
                continue
            try:
                item = reread(json.loads(row.raw_json))
                if item is not None:
                    to_new_mention(account.id, item)  # the same checks as the store's
            except (ValueError, TypeError, KeyError) as exc:
                self._health.set_error(row.id, f"{exc} (tried again {_utc(int(self._clock.now()))})")
                still += 1
                continue
            if item is not None:
                readable.setdefault(account.id, []).append(item)
            done.setdefault(account.id, []).append(row.id)
        stored = 0
        for account_id, quarantine_ids in done.items():
            account = self._accounts.get(account_id)
            items = readable.get(account_id, [])
            if account is not None and items:
                stored += (await self._poller.store_items(account, items)).stored
            self._health.dismiss(quarantine_ids)  # only after their items are stored
        read = sum(len(v) for v in done.values())
        if read and still:
            message = f"{read} item(s) could be read now and were added; {still} still cannot be read."
        elif read:
            message = f"All {read} item(s) could be read now and were added to the queue."
        else:
            message = f"{still} item(s) still cannot be read by this version; they stay kept aside."
        return RetryOutcome(read=read, stored=stored, still_unreadable=still, message=message)

    async def reauthenticate(self, account_id: int) -> str:
        """Sign an account in again: renew the token, verify it, and poll right away when it works.

        Args:
            account_id: The account.

        Returns:
            A sentence for the agent saying what happened.
        """
        account = self._accounts.get(account_id)
        connector = self._connectors.get(account_id)
        if account is None or connector is None:
            return "This account is not synced in this session."
        try:
            if self._renew_token is not None:
                self._renew_token(account_id)
            identity = await connector.verify()
        except AuthExpired as exc:
            self._accounts.set_health(account_id, Health.AUTH_EXPIRED, str(exc))
            return f"Signing in to @{account.handle} failed: {exc}"
        except ChannelError as exc:
            return f"Could not check the sign-in of @{account.handle} now: {exc}"
        self._accounts.set_health(account_id, Health.OK)
        self._poller.reschedule_now(account_id)
        self._poller.wake()
        if self.on_signed_in is not None:
            self.on_signed_in(account_id)
        log.info("account %s signed in again as @%s", account_id, identity.handle)
        return f"Signed in again as @{identity.handle}; syncing now."


def _utc(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%H:%M:%S UTC")


def utc_day(epoch: int) -> str:
    """``2026-12-07 14:05 UTC``: how far back a first sync went, for the command line and logs."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def backfill_sentence(backfill: Backfill, *, day: Callable[[int], str] = utc_day) -> str:
    """How far a first sync read back, and whether it reached its horizon (issue 20, sync 1).

    Args:
        backfill: The first sync's progress, from a :class:`SyncReport`.
        day: Formats an epoch time (UTC on the command line; the window passes local time).

    Returns:
        A phrase such as ``"first sync reached its horizon (2026-11-30 14:00 UTC)"``.
    """
    back_to = "nothing yet" if backfill.oldest is None else day(backfill.oldest)
    if not backfill.done:
        return f"first sync reading back to {day(backfill.horizon)}, at {back_to} so far"
    if backfill.reached_horizon:
        return f"first sync reached its horizon ({day(backfill.horizon)})"
    return (
        f"first sync read all the server has (back to {back_to}); "
        f"its horizon ({day(backfill.horizon)}) lies before that"
    )


def describe(report: SyncReport) -> str:
    """A plain sentence about one poll, for ``care-console sync --once`` and logs (times in UTC)."""
    if report.ok:
        text = (
            f"fetched {report.fetched}, stored {report.stored} ({count(len(report.new_items), 'new item')}, "
            f"{count(len(report.follow_ups), 'follow-up')}), "
            f"{count(report.duplicates, 'duplicate')}"
        )
        if report.quarantined:
            text += f"; {count(report.quarantined, 'malformed item')} quarantined"
        if report.throttled and report.next_attempt_at is not None:
            text += f"; request budget low, next poll at {_utc(report.next_attempt_at)}"
        if report.backfill is not None:
            text += f"; {backfill_sentence(report.backfill)}"
        return text
    label = {
        Health.DEGRADED: "retrying",
        Health.RATE_LIMITED: "rate limited",
        Health.AUTH_EXPIRED: "sign-in expired",
        Health.FAILING: "failing",
        Health.OK: "failed",
    }[report.health]
    text = f"{label}: {report.error}"
    if report.backfill is not None:
        text += f" ({backfill_sentence(report.backfill)})"
    if report.health is Health.AUTH_EXPIRED:
        text += " Sign in again to resume syncing and sending; queued replies wait."
    elif report.next_attempt_at is not None:
        verb = "until" if report.health is Health.RATE_LIMITED else "next attempt at"
        text += f" ({verb} {_utc(report.next_attempt_at)})"
    return text
