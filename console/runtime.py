"""The running core of the app: storage, repositories, the embedded sandbox, connectors and the poller."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from console.channels.base import AccountRef, Connector
from console.channels.mastodon import MastodonConnector
from console.inbox import Poller
from console.ports import Clock, MemorySecretStore, SecretStore
from console.queue import QueueService
from console.sandbox import SandboxServer
from console.sla import SlaPolicy
from storage.accounts import AccountRepo, SyncStateRepo
from storage.db import DB_FILENAME, open_database
from storage.events import EventRepo
from storage.lock import InstanceLock
from storage.mentions import MentionRepo
from storage.rows import AccountRow
from storage.settings import (
    FIRST_RESPONSE_MINUTES,
    NEXT_RESPONSE_MINUTES,
    POLL_SECONDS,
    RESOLUTION_HOURS,
    WARN_FRACTION,
    SettingsRepo,
)

log = logging.getLogger(__name__)

#: The sandbox account's stable identity; its real URL (a random loopback port) is known only at run time.
SANDBOX_BASE_URL = "sandbox://embedded"
SANDBOX_HANDLE = "care"


def http_timeout() -> httpx.Timeout:
    """Explicit timeouts for every channel client (STYLE B2): flaky networks must not hang a poll."""
    return httpx.Timeout(connect=5.0, read=15.0, write=15.0, pool=5.0)


@dataclass(frozen=True, slots=True)
class SandboxOptions:
    seed: int = 1
    rate_per_minute: float = 4.0
    backlog: int = 12


@dataclass
class Runtime:
    """Owns everything with a lifetime: the lock, the database, HTTP clients, the sandbox, the poll task.

    Built by ``open_runtime``; closed with ``aclose`` (HTTP clients, sandbox, database, lock, in that order).
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
    queue: QueueService
    poller: Poller
    sandbox: SandboxServer | None = None
    clients: list[httpx.AsyncClient] = field(default_factory=list)
    connectors: dict[int, Connector] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    close_db: Callable[[], None] = lambda: None

    @property
    def on_sandbox(self) -> bool:
        return self.sandbox is not None

    def start_polling(self) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self.poller.run(), name="poller")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def aclose(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for connector in self.connectors.values():
            await connector.aclose()
        for client in self.clients:
            await client.aclose()
        if self.sandbox is not None:
            self.sandbox.stop()
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
    settings = SettingsRepo(db)
    accounts = AccountRepo(db)
    sync_state = SyncStateRepo(db)
    mentions = MentionRepo(db)
    events = EventRepo(db)
    real_accounts = accounts.list(enabled_only=True, include_sandbox=False)
    server: SandboxServer | None = None
    secret_store = secrets
    refs: dict[int, AccountRef] = {}
    if force_sandbox or not real_accounts:
        options = sandbox or SandboxOptions()
        server = SandboxServer(
            seed=options.seed, rate_per_minute=options.rate_per_minute, backlog=options.backlog, clock=clock
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
        refs[row.id] = AccountRef(row.id, row.kind, row.handle, server.base_url)
    else:
        for row in real_accounts:
            refs[row.id] = _ref(row)
    policy = sla_policy(settings)
    interval = poll_seconds if poll_seconds is not None else float(settings.get(POLL_SECONDS))
    runtime = Runtime(
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
        queue=QueueService(mentions, events, clock),
        poller=Poller(mentions, accounts, sync_state, {}, clock, policy=policy, interval=interval),
        sandbox=server,
        close_db=db.conn.close,
    )
    for account_id, ref in refs.items():
        if ref.kind != "mastodon":
            log.warning("account %s: channel %s has no connector yet; it is not synced", account_id, ref.kind)
            continue
        client = httpx.AsyncClient(timeout=http_timeout(), trust_env=ref.base_url.startswith("https"))
        runtime.clients.append(client)
        runtime.connectors[account_id] = MastodonConnector(client, account=ref, secrets=secret_store, clock=clock)
    runtime.poller.connectors = runtime.connectors
    return runtime


def _ref(row: AccountRow) -> AccountRef:
    return AccountRef(row.id, row.kind, row.handle, row.base_url)
