"""The running core of the app: storage, repositories, the embedded sandbox, connectors and the poller."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from console.channels import ChannelKind, build_connector
from console.channels.base import AccountRef, Connector
from console.channels.http import tls_context
from console.model import SyncReport
from console.ports import Clock, MemorySecretStore, SecretStore
from console.queue import QueueService
from console.replies.capacity import CapacityService
from console.replies.desk import ReplyDesk, build_reply_desk
from console.replies.outbox import Outbox
from console.reports.export.service import ExportService
from console.sandbox import SandboxServer
from console.sandbox.faults import FaultRule
from console.shifts.service import ShiftService
from console.sla.bands import SlaPolicy
from console.sla.engine import SlaEngine
from console.surveys.service import SurveyService
from console.sync.health import ChannelHealth
from console.sync.inbox import Poller
from console.sync.manual import MANUAL_KIND, ManualIntake
from console.sync.own_posts import OwnPostsReader, SeenRecord
from console.sync.store_worker import BackgroundStore
from console.sync.threads import ThreadService
from console.sync.upstream import UpstreamChecker
from console.triage import Triage
from storage.account_admin import AccountAdmin
from storage.accounts import AccountRepo, SyncStateRepo
from storage.capacity import CapacityRepo, StatusPostRepo
from storage.checkpoint import Checkpointer
from storage.db import DB_FILENAME, close_database, open_database
from storage.deadlines import DeadlineRepo
from storage.errors import StorageError
from storage.events import EventRepo
from storage.health import HealthRepo
from storage.lock import InstanceLock
from storage.mentions import MentionRepo
from storage.replies import ReplyRepo
from storage.rows import AccountRow, ReplyRow
from storage.seen_replies import SeenReplyRepo
from storage.settings import (
    AGENT_NAME,
    FIRST_RESPONSE_MINUTES,
    NEXT_RESPONSE_MINUTES,
    POLL_SECONDS,
    RESOLUTION_HOURS,
    SYNC_HORIZON_DAYS,
    WARN_FRACTION,
    SettingsRepo,
)
from storage.shifts import ShiftRepo
from storage.surveys import SurveyRepo
from storage.templates import TemplateRepo
from storage.thread_context import ThreadContextRepo
from storage.triage import TriageRepo
from storage.upstream import UpstreamRepo

if TYPE_CHECKING:
    from console.accounts.service import AccountService
    from console.team.service import TeamAdmin, TeamService

log = logging.getLogger(__name__)

#: The sandbox account's stable identity; its real URL (a random loopback port) is known only at run time.
SANDBOX_BASE_URL = "sandbox://embedded"
SANDBOX_HANDLE = "care"
#: The sandbox's simulated world (its posts, customers and replies), kept next to the database.
SANDBOX_STATE_FILE = "sandbox.json"


def channel_client(base_url: str) -> httpx.AsyncClient:
    """One long-lived client per account (STYLE B2). Certificates are always checked, against the system's
    certificate store (``tls_context``; about 2 ms, where httpx's own CA bundle took about 60 ms per client).
    HTTPS follows the proxy settings; a plain-http base URL (only loopback is accepted: the embedded sandbox
    on 127.0.0.1) ignores proxy variables that could reroute loopback."""
    return httpx.AsyncClient(timeout=http_timeout(), trust_env=base_url.startswith("https"), verify=tls_context())


def http_timeout() -> httpx.Timeout:
    """Explicit timeouts for every channel client (STYLE B2): flaky networks must not hang a poll."""
    return httpx.Timeout(connect=5.0, read=15.0, write=15.0, pool=5.0)


@dataclass(frozen=True, slots=True)
class SandboxOptions:
    seed: int = 1
    rate_per_minute: float = 4.0
    backlog: int = 12
    faults: tuple[FaultRule, ...] = ()  # fault switches on from the start (issue 5)


@dataclass(kw_only=True)
class Runtime:
    """Owns everything with a lifetime: the lock, the database, HTTP clients, the sandbox, the poll task.

    Built once, in dependency order, by ``open_runtime``: every service is ready when the Runtime exists (none
    is filled in later). Closed with ``aclose`` (tasks, HTTP clients, sandbox, database, lock, in that order).
    """

    data_dir: Path
    clock: Clock
    secrets: SecretStore
    db_path: Path
    lock: InstanceLock
    settings: SettingsRepo
    accounts: AccountRepo
    sync_state: SyncStateRepo
    mentions: MentionRepo
    events: EventRepo
    #: Per account with a connector; the poller, the outbox and the thread and upstream readers share this dict.
    connectors: dict[int, Connector]
    #: Every channel client, closed by ``aclose`` with or without a connector.
    clients: list[httpx.AsyncClient]
    #: The runtime's tasks (poller, outbox, upstream checks, re-authentication), cancelled by ``aclose``.
    tasks: set[asyncio.Task[None]]
    queue: QueueService
    #: The SLA engine (issue 14): policies, calendars, pauses, follow-up commitments, breaches.
    sla: SlaEngine
    poller: Poller
    #: Stores synced batches on a worker thread with its own connection (the poller's store).
    store: BackgroundStore
    #: Templates, checks, drafts and the outbox (issue 8).
    replies: ReplyDesk
    #: Net Easy surveys (issue 9): the guard, sending through the outbox, answers read after each sync.
    surveys: SurveyService
    #: Status, priority and tag changes with undo (issue 7); tells the SLA engine about status changes.
    triage: Triage
    #: Shifts (issue 10): start and end, notes for the next shift, shifts left open at a crash.
    shifts: ShiftService
    #: Shift summaries and their exports (issue 10), off the GUI loop in a worker thread.
    exports: ExportService
    #: Account removal and item counts (issue 6).
    account_admin: AccountAdmin
    #: The expected wait and its status post (issue 14, "be honest about capacity").
    capacity: CapacityService
    #: The whole conversation fetched from the channel and cached; upstream marks (issues 6 and 7).
    threads: ThreadService
    #: Channel health for the status bar, the health strip and re-authentication.
    health: ChannelHealth
    #: WAL checkpoints on their own thread, so neither the window nor the sync worker waits for the disk.
    checkpointer: Checkpointer
    close_db: Callable[[], None]
    #: The embedded sandbox server; None when the app syncs real accounts.
    sandbox: SandboxServer | None = None
    #: Puts a fresh token for an account into the secret store (the sandbox's; None for real channels).
    renew_token: Callable[[int], None] | None = None
    #: Team mode (docs/TEAM.md): the replicator, claims, poller leases and send gate; None when solo. Built here,
    #: connected by ``await team.start()`` (the window's loop, or the caller's), closed by ``aclose``.
    team: TeamService | None = None
    #: File → Team…'s operations (join, host, invite, leave, status) on this data folder, keyring and local copy.
    team_admin: Callable[[], TeamAdmin]

    def account_signed_in(self, account_id: int) -> None:
        """An account works again after a sign-in: the replies that waited for it leave now (issue 5)."""
        self.replies.outbox.retry_account(account_id)

    @property
    def on_sandbox(self) -> bool:
        return self.sandbox is not None

    def attach_account(self, row: AccountRow) -> None:
        """Start syncing an account added or re-enabled while the app runs (the accounts dialog calls this)."""
        if row.kind == ChannelKind.MANUAL or not row.enabled:
            return
        existing = self.connectors.get(row.id)
        if existing is not None:
            # A new credential was saved for a running account: drop the connector's cached one.
            task = asyncio.get_running_loop().create_task(existing.aclose(), name=f"forget-credential-{row.id}")
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            self.poller.wake()
            self.account_signed_in(row.id)  # replies that waited for this sign-in go out now
            return
        client = channel_client(row.base_url)
        self.clients.append(client)
        connector = build_connector(row.kind, client, _ref(row), self.secrets, self.clock)
        if connector is not None:
            self.connectors[row.id] = connector
            self.poller.wake()

    def manual_intake(self) -> ManualIntake:
        """Pasted posts enter the queue through the same store and SLA planner as synced ones."""
        plan = self.sla.planner(MANUAL_KIND)
        return ManualIntake(self.mentions, self.accounts, self.clock, plan, on_follow_ups=self.sla.recompute)

    def account_service(self, *, keyring_warning: str | None = None) -> AccountService:
        """The accounts service for the dialog: verifies credentials, keeps them in the secret store."""
        from console.accounts.service import AccountService  # here: sign-in and OAuth code is not needed to start

        client = httpx.AsyncClient(timeout=http_timeout(), verify=tls_context())
        self.clients.append(client)
        return AccountService(
            self.accounts,
            self.account_admin,
            self.secrets,
            self.clock,
            client,
            keyring_warning=keyring_warning,
            on_added=self.attach_account,
        )

    def record_breaches(self) -> list[int]:
        """Record the deadlines that passed unmet since the last check (the window's breach timer, after each sync).

        Returns:
            The mentions whose deadlines changed; none when the write failed (logged; the next check retries).
        """
        try:
            return self.sla.record_breaches()
        except StorageError as exc:
            log.error("recording breaches failed: %s", exc)
            return []

    def start_sending(self) -> asyncio.Task[None]:
        """Start the outbox sender (replies queued offline or before a crash leave now)."""
        task = asyncio.get_running_loop().create_task(self.replies.outbox.run(), name="outbox")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def start_team(self) -> None:
        """Connect the team (replication, claims, leases, heartbeat) when this copy is in one; solo: nothing.

        On the computer that hosts the team server, a server that went down without ``team host --stop`` (a
        restart of the computer) is started again first, off the loop.
        """
        team = self.team
        if team is None:
            return

        async def start() -> None:
            from console.team.host import resume_host

            try:
                resumed = await asyncio.to_thread(resume_host, self.data_dir, self.secrets)
            except Exception as exc:  # the team then shows "offline" with the server's reason
                log.error("the team server hosted here could not start: %s", exc)
            else:
                if resumed is not None and resumed.started:
                    log.info("started the team server hosted here on port %s", resumed.port)
            await team.start()

        task = asyncio.get_running_loop().create_task(start(), name="team-start")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def start_polling(self) -> asyncio.Task[None]:
        # In a team the lease keeper decides which accounts this machine polls: the team starts with the poller.
        self.start_team()
        task = asyncio.get_running_loop().create_task(self.poller.run(), name="poller")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def aclose(self) -> None:
        if self.team is not None:
            await self.team.aclose()  # first: it hands its leases back and stops writing to the local copy
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.replies.limits.aclose()  # instance-limit reads still under way
        for connector in self.connectors.values():
            await connector.aclose()
        for client in self.clients:
            await client.aclose()
        if self.sandbox is not None:
            self.sandbox.stop()
        self.exports.close()
        await self.store.aclose()
        self.checkpointer.close()
        self.close_db()
        self.lock.release()


def sla_policy(settings: SettingsRepo) -> SlaPolicy:
    return SlaPolicy(
        first_response=settings.get(FIRST_RESPONSE_MINUTES) * 60,
        next_response=settings.get(NEXT_RESPONSE_MINUTES) * 60,
        resolution=settings.get(RESOLUTION_HOURS) * 3600,
        warn_fraction=settings.get(WARN_FRACTION),
    )


def open_runtime(
    data_dir: Path,
    *,
    clock: Clock,
    secrets: SecretStore,
    sandbox: SandboxOptions | None = None,
    force_sandbox: bool = False,
    poll_seconds: float | None = None,
) -> Runtime:
    """Lock the data directory, open the database and wire the services.

    With no real account configured (or ``force_sandbox``), the embedded sandbox server is started on a free
    loopback port and the app syncs from it.

    Raises:
        DatabaseLocked: another instance runs on this data directory.
        DatabaseCorrupt, DatabaseTooNew, StorageError: the database cannot be used (the lock is released).
    """
    lock = InstanceLock(data_dir)
    lock.acquire()
    try:
        db = open_database(data_dir / DB_FILENAME)
    except BaseException:
        lock.release()
        raise
    checkpointer = Checkpointer(data_dir / DB_FILENAME)
    checkpointer.start()
    settings = SettingsRepo(db)
    accounts = AccountRepo(db)
    sync_state = SyncStateRepo(db)
    mentions = MentionRepo(db)
    events = EventRepo(db)
    # A manual-intake account is not a channel connection: with only that, the app still runs on the sandbox.
    real_accounts = [
        row for row in accounts.list(enabled_only=True, include_sandbox=False) if row.kind != ChannelKind.MANUAL
    ]
    server: SandboxServer | None = None
    secret_store = secrets
    refs: dict[int, AccountRef] = {}
    renew_token: Callable[[int], None] | None = None
    sandbox_since: dict[int, int] = {}
    if force_sandbox or not real_accounts:
        options = sandbox or SandboxOptions()
        server = SandboxServer(
            seed=options.seed,
            rate_per_minute=options.rate_per_minute,
            backlog=options.backlog,
            clock=clock,
            faults=options.faults,
            # The sandbox's world lives in the data folder: a restart continues the same shift (issue 19 #6).
            state_path=data_dir / SANDBOX_STATE_FILE,
        )
        server.start()
        row = accounts.add(
            kind="mastodon",
            handle=SANDBOX_HANDLE,
            base_url=SANDBOX_BASE_URL,
            display_name="Sandbox",
            is_sandbox=True,
            now=int(clock.now()),
        )
        # The sandbox token is not a secret; keep it out of the OS keyring.
        sandbox_secrets = MemorySecretStore()
        sandbox_secrets.set(f"mastodon:{row.id}", server.token)
        secret_store = sandbox_secrets

        def renew_sandbox_token(account_id: int, server: SandboxServer = server) -> None:
            # The sandbox hands out its current token directly: signing in again after a revocation.
            sandbox_secrets.set(f"mastodon:{account_id}", server.token)

        renew_token = renew_sandbox_token
        refs[row.id] = AccountRef(row.id, row.kind, row.handle, server.base_url)
        if not server.restored:
            # A sandbox that starts a new world has not seen earlier sessions' posts: not "deleted upstream".
            sandbox_since[row.id] = int(clock.now())
    else:
        for row in real_accounts:
            refs[row.id] = _ref(row)
    # The channel connectors first: the poller, the outbox and the thread readers share them.
    clients: list[httpx.AsyncClient] = []
    connectors: dict[int, Connector] = {}
    for account_id, ref in refs.items():
        if ref.kind == ChannelKind.MANUAL:
            continue  # pasted items; nothing to poll
        client = channel_client(ref.base_url)
        clients.append(client)  # closed by aclose, with or without a connector
        connector = build_connector(ref.kind, client, ref, secret_store, clock)
        if connector is None:
            log.warning("account %s: channel %s has no connector; it is not synced", account_id, ref.kind)
            continue
        connectors[account_id] = connector
    tasks: set[asyncio.Task[None]] = set()
    sla = SlaEngine(DeadlineRepo(db, mentions), settings, clock)
    health = HealthRepo(db)
    store = BackgroundStore(data_dir / DB_FILENAME)
    interval = poll_seconds if poll_seconds is not None else float(settings.get(POLL_SECONDS))
    poller = Poller(
        mentions,
        accounts,
        sync_state,
        connectors,
        clock,
        policy=sla_policy(settings),
        planner=sla.planner,
        interval=interval,
        health=health,
        store=store,
        horizon=settings.get(SYNC_HORIZON_DAYS) * 24 * 3600,
        own_posts=OwnPostsReader(SeenReplyRepo(db), clock),
    )
    shifts = ShiftService(ShiftRepo(db), settings, clock)
    # Mastodon sends no notification for edits and deletions: re-read open threads now and then (issue 6).
    upstream = UpstreamChecker(UpstreamRepo(db), connectors, clock, fetched_since=sandbox_since, tasks=tasks)
    replies = build_reply_desk(
        replies=ReplyRepo(db), templates=TemplateRepo(db), mentions=mentions, accounts=accounts,
        connectors=connectors, settings=settings, clock=clock, on_sent=_reply_sent_hook(sla),
        statuses=StatusPostRepo(db),
    )  # fmt: skip
    outbox = replies.outbox

    def shift_start() -> int | None:
        shift = shifts.current()
        return None if shift is None else shift.started_at

    def signed_in(account_id: int) -> None:
        outbox.retry_account(account_id)  # replies that waited for this sign-in leave now (issue 5)

    def send_survey(mention_id: int, text: str, visibility: str | None) -> int:
        return outbox.queue(mention_id, text, visibility=visibility, purpose="survey")

    surveys = SurveyService(
        SurveyRepo(db), mentions, settings, clock, send_survey, on_status_change=sla.on_status_change,
        on_answered=sla.recompute,
    )  # fmt: skip
    # Listeners in this order: the SLA engine first (it reopens), then the upstream checks, then the surveys.
    poller.subscribe(sla.on_synced)
    poller.subscribe(upstream.on_synced)
    poller.subscribe(surveys.on_sync)
    team = _team_service(
        settings, db=db, db_path=data_dir / DB_FILENAME, mentions=mentions, accounts=accounts, secrets=secrets,
        channel_secrets=secret_store, clock=clock, sla=sla, poller=poller, outbox=outbox,
    )  # fmt: skip
    if poller.own_posts is not None:
        poller.own_posts.subscribe(_seen_replies_hook(sla, outbox))
    return Runtime(
        data_dir=data_dir,
        clock=clock,
        secrets=secrets,
        db_path=data_dir / DB_FILENAME,
        lock=lock,
        settings=settings,
        accounts=accounts,
        sync_state=sync_state,
        mentions=mentions,
        events=events,
        connectors=connectors,
        clients=clients,
        tasks=tasks,
        queue=QueueService(mentions, events, clock, deadline_notes=sla.notes),
        sla=sla,
        poller=poller,
        store=store,
        replies=replies,
        surveys=surveys,
        triage=Triage(
            TriageRepo(db),
            clock,
            actor=lambda: settings.get(AGENT_NAME),
            on_status_change=sla.on_status_change,
            on_priority_change=sla.on_priority_change,
        ),
        shifts=shifts,
        exports=ExportService(data_dir / DB_FILENAME, clock, settings),
        account_admin=AccountAdmin(db),
        capacity=CapacityService(
            CapacityRepo(db), accounts, outbox, clock, shift_start=shift_start, calendar=sla.default_calendar
        ),
        threads=ThreadService(ThreadContextRepo(db), connectors, clock),
        health=ChannelHealth(
            accounts, sync_state, health, poller, connectors, renew_token=renew_token, on_signed_in=signed_in
        ),
        checkpointer=checkpointer,
        close_db=lambda: close_database(db),
        sandbox=server,
        renew_token=renew_token,
        team=team,
        team_admin=lambda: _team_admin(data_dir, settings, secrets, db, clock),
    )


def _team_service(
    settings: SettingsRepo,
    *,
    db: Any,
    db_path: Path,
    mentions: MentionRepo,
    accounts: AccountRepo,
    secrets: SecretStore,
    channel_secrets: SecretStore,
    clock: Clock,
    sla: SlaEngine,
    poller: Poller,
    outbox: Outbox,
) -> TeamService | None:
    """The team service when this copy is in a team (``TeamConfig`` in the settings), else None: solo is unchanged
    and imports nothing of team mode (psycopg stays out of a solo start). Its send gate goes into the outbox and
    its lease keeper becomes the poller's gate; a sync that stored messages wakes the replicator to push them.

    A team that cannot be set up from the settings (a DSN this app cannot read) is logged and the copy runs solo
    for this session rather than not at all.
    """
    from console.team.config import load_config

    config = load_config(settings)
    if config is None:
        return None
    from console.team.service import build_team_service

    try:
        team = build_team_service(
            config, db=db, db_path=db_path, mentions=mentions, accounts=accounts, secrets=secrets,
            channel_secrets=channel_secrets, clock=clock, sla=sla,
        )  # fmt: skip
    except (ValueError, StorageError) as exc:
        log.error("team mode could not start (working solo this session): %s", exc)
        return None
    outbox.gate = team.send_gate
    poller.poll_gate = team.leases
    team.leases.subscribe(poller.wake)  # this machine took an account over: poll it now

    def pushed_soon(report: SyncReport) -> None:
        if report.new_items or report.follow_ups:
            team.wake()

    poller.subscribe(pushed_soon)
    return team


def _team_admin(data_dir: Path, settings: SettingsRepo, secrets: SecretStore, db: Any, clock: Clock) -> TeamAdmin:
    from console.team.service import TeamAdmin
    from storage.team_local import TeamLocalRepo

    return TeamAdmin(data_dir, settings, secrets, TeamLocalRepo(db), clock)


def _reply_sent_hook(engine: SlaEngine) -> Callable[[ReplyRow], None]:
    """Tell the SLA engine that a reply reached the customer (first/next response met; holding promise)."""

    def on_sent(row: ReplyRow) -> None:
        if row.sent_at is not None:
            engine.reply_sent(row.mention_id, row.sent_at, purpose=row.purpose, holding_until=row.holding_until)

    return on_sent


def _seen_replies_hook(engine: SlaEngine, outbox: Outbox) -> Callable[[list[SeenRecord]], None]:
    """Replies posted from elsewhere, found on the channel: they meet the SLA like a reply of ours (first or
    next response) and the thread and the queue show them (issue #22 item 5)."""

    def on_seen(records: list[SeenRecord]) -> None:
        for record in records:
            engine.record_response(record.mention_id, record.posted_at)
            outbox.notify_changed(record.mention_id)

    return on_seen


def _ref(row: AccountRow) -> AccountRef:
    return AccountRef(row.id, row.kind, row.handle, row.base_url)
