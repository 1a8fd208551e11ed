"""The connector contract, channel by channel (issue 21 item 1): what a fetch says travels in its batch, so sync
quarantines a malformed item and honours a rate-limit answer on every channel, each from its loopback server.

Each channel's server gets one malformed entry among good ones (the rest of the page is stored, the entry is kept
aside raw), and one rate-limit answer in the channel's own words (channels.md "Headers"): a budget spent to zero
on a normal answer (Mastodon, Bluesky, X, Facebook), a 429 with ``Retry-After`` (Discourse), a ``quotaExceeded``
(YouTube). Either way the account's next poll waits until the channel's reset time, and no sooner.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlite_utils

from console.channels.base import AccountRef, Connector
from console.channels.bluesky import BlueskyConnector
from console.channels.discourse import DiscourseConnector
from console.channels.facebook import FacebookConnector
from console.channels.mastodon import MastodonConnector
from console.channels.x import XConnector, XTokens
from console.channels.youtube import YouTubeConnector, next_quota_reset
from console.model import SyncReport
from console.ports import MemorySecretStore
from console.sandbox import SandboxServer
from console.sandbox.faults import Fault, FaultRule
from console.sync.inbox import Poller
from storage.accounts import AccountRepo, SyncStateRepo
from storage.health import HealthRepo
from storage.mentions import MentionRepo
from storage.rows import Health
from tests.fakes.bluesky_server import FakeBlueskyServer
from tests.fakes.clock import FakeClock
from tests.fakes.discourse_server import FakeDiscourseServer
from tests.fakes.facebook_server import PAGE, VERSION, FakeFacebookServer
from tests.fakes.x_server import FakeXServer
from tests.fakes.youtube_server import CHANNEL, FakeYouTubeServer

Arun = Callable[..., Any]
#: How long each channel's rate-limit answer asks to wait: longer than the poll interval, so only it explains it.
WAIT = 600


@dataclass(frozen=True)
class Channel:
    """How to run one channel's connector against its loopback server, and make that server misbehave."""

    kind: str
    serve: Callable[[FakeClock], AbstractContextManager[Any]]
    handle: Callable[[Any], str]
    base_url: Callable[[Any], str]
    credential: Callable[[Any, FakeClock], str]
    connect: Callable[[httpx.AsyncClient, AccountRef, MemorySecretStore, FakeClock, Any], Connector]
    customers: Callable[[Any], None]  # two customer messages the connector reads
    malformed: Callable[[Any], None]  # one entry among them the connector cannot read
    spend_budget: Callable[[Any, FakeClock], float]  # the next listing says "wait"; returns the reset time
    #: Text the quarantined entry's raw JSON holds.
    marker: str = "malformed"


# -- Mastodon: the sandbox, a Mastodon server on loopback --------------------------------------------------


@contextmanager
def sandbox(clock: FakeClock) -> Iterator[SandboxServer]:
    server = SandboxServer(seed=5, rate_per_minute=0.0, backlog=0, clock=clock)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def mastodon_malformed(server: SandboxServer) -> None:
    server.generate(1)
    server.set_faults([FaultRule(Fault.MALFORMED_ITEM, count=1)])  # one notification of the page loses its account


def mastodon_budget(server: SandboxServer, clock: FakeClock) -> float:
    server.set_faults([FaultRule(Fault.LOW_BUDGET, retry_after=WAIT, remaining=0)])  # X-RateLimit-Reset, ISO time
    return clock.now() + WAIT


# -- the fakes in tests/fakes -----------------------------------------------------------------------------


@contextmanager
def fake(factory: Callable[[], Any], clock: FakeClock) -> Iterator[Any]:
    with factory() as server:
        clock.set(server.now)
        yield server


def x_credential(server: FakeXServer, clock: FakeClock) -> str:
    access, refresh = server.issue()
    return XTokens(access, refresh, clock.now() + 7200, "client-abc").dumps()


def x_budget(server: FakeXServer, clock: FakeClock) -> float:
    reset = int(clock.now()) + WAIT
    server.headers = {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)}
    return reset


def bluesky_budget(server: FakeBlueskyServer, clock: FakeClock) -> float:
    reset = int(clock.now()) + WAIT
    server.headers = {
        "RateLimit-Limit": "3000",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": str(reset),
        "RateLimit-Policy": "3000;w=300",
    }
    return reset


def facebook_customers(server: FakeFacebookServer) -> None:
    post = server.post()
    server.comment(post, "Ann", "is this in stock?")
    server.comment(post, "Bob", "and in blue?")


def facebook_malformed(server: FakeFacebookServer) -> None:
    server.malformed(max(server.posts, key=lambda post_id: server.posts[post_id]["updated_time"]), "Cid")


def facebook_budget(server: FakeFacebookServer, clock: FakeClock) -> float:
    usage = {"type": "pages", "call_count": 100, "total_cputime": 12, "total_time": 15}
    usage["estimated_time_to_regain_access"] = WAIT // 60  # minutes
    server.headers = {"X-Business-Use-Case-Usage": json.dumps({PAGE: [usage]})}
    return clock.now() + WAIT


def discourse_budget(server: FakeDiscourseServer, clock: FakeClock) -> float:
    server.fail_next(
        429,
        {"errors": ["You've performed this action too many times."], "error_type": "rate_limit"},
        path="/notifications.json",
        headers={"Retry-After": str(WAIT), "Discourse-Rate-Limit-Error-Code": "user_api_key_limiter_60_secs"},
    )
    return clock.now() + WAIT


def youtube_credential(server: FakeYouTubeServer, clock: FakeClock) -> str:
    del server
    return json.dumps(
        {"access_token": "access-0", "refresh_token": "refresh-0", "expires_at": clock.now() + 3600, "client_id": "c"}
    )


def youtube_budget(server: FakeYouTubeServer, clock: FakeClock) -> float:
    server.quota_exceeded = True  # 403 quotaExceeded: no headers, the day's quota resets at midnight Pacific Time
    return next_quota_reset(clock.now())


CHANNELS = [
    Channel(
        "mastodon",
        sandbox,
        lambda server: "care",
        lambda server: server.base_url,
        lambda server, clock: server.token,
        lambda client, ref, secrets, clock, server: MastodonConnector(
            client, account=ref, secrets=secrets, clock=clock
        ),
        lambda server: server.generate(2) and None,
        mastodon_malformed,
        mastodon_budget,
        marker='"status"',
    ),
    Channel(
        "bluesky",
        lambda clock: fake(FakeBlueskyServer, clock),
        lambda server: server.handle,
        lambda server: server.base_url,
        lambda server, clock: server.password,
        lambda client, ref, secrets, clock, server: BlueskyConnector(
            client, account=ref, secrets=secrets, clock=clock, dms=False
        ),
        lambda server: [server.post(f"cust{n}.bsky.social", f"@brand help {n}") for n in range(2)] and None,
        lambda server: server.malformed("odd.bsky.social") and None,
        bluesky_budget,
    ),
    Channel(
        "x",
        lambda clock: fake(FakeXServer, clock),
        lambda server: "brand",
        lambda server: server.base_url,
        x_credential,
        lambda client, ref, secrets, clock, server: XConnector(client, account=ref, secrets=secrets, clock=clock),
        lambda server: [server.mention("cust", f"@brand hi {n}") for n in range(2)] and None,
        lambda server: server.malformed() and None,
        x_budget,
    ),
    Channel(
        "discourse",
        lambda clock: fake(FakeDiscourseServer, clock),
        lambda server: "brand",
        lambda server: server.base_url,
        lambda server, clock: "admin-key-1",
        lambda client, ref, secrets, clock, server: DiscourseConnector(
            client, account=ref, secrets=secrets, clock=clock
        ),
        lambda server: [server.topic(f"cust{n}", f"@brand my order {n} never arrived") for n in range(2)] and None,
        lambda server: server.malformed("odd") and None,
        discourse_budget,
    ),
    Channel(
        "youtube",
        lambda clock: fake(FakeYouTubeServer, clock),
        lambda server: CHANNEL,
        lambda server: server.base_url,
        youtube_credential,
        lambda client, ref, secrets, clock, server: YouTubeConnector(
            client, account=ref, secrets=secrets, clock=clock, token_url=server.base_url + "/token"
        ),
        lambda server: [server.comment(f"Viewer{n}", f"question {n}") for n in range(2)] and None,
        lambda server: server.malformed("Odd") and None,
        youtube_budget,
    ),
    Channel(
        "facebook",
        lambda clock: fake(FakeFacebookServer, clock),
        lambda server: PAGE,
        lambda server: server.base_url + VERSION,
        lambda server, clock: server.token,
        lambda client, ref, secrets, clock, server: FacebookConnector(
            client, account=ref, secrets=secrets, clock=clock
        ),
        facebook_customers,
        facebook_malformed,
        facebook_budget,
    ),
]


@dataclass
class Sync:
    poller: Poller
    health: HealthRepo
    account_id: int
    server: Any
    clock: FakeClock

    async def poll(self) -> SyncReport:
        """One poll of the account, the server's clock caught up first (its messages are never in the future)."""
        self.clock.set(max(self.clock.now(), float(getattr(self.server, "now", 0.0))))
        (report,) = await self.poller.sync_once()
        return report


@asynccontextmanager
async def wired(channel: Channel, db: sqlite_utils.Database, clock: FakeClock) -> AsyncIterator[Sync]:
    """The channel's server, its connector and a Poller over a fresh account, as the app wires them."""
    with channel.serve(clock) as server:
        accounts = AccountRepo(db)
        account = accounts.add(
            kind=channel.kind, handle=channel.handle(server), base_url=channel.base_url(server), now=int(clock.now())
        )
        secrets = MemorySecretStore()
        secrets.set(f"{channel.kind}:{account.id}", channel.credential(server, clock))
        async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(5.0)) as client:
            ref = AccountRef(account.id, channel.kind, account.handle, account.base_url)
            connector = channel.connect(client, ref, secrets, clock, server)
            health = HealthRepo(db)
            poller = Poller(
                MentionRepo(db), accounts, SyncStateRepo(db), {account.id: connector}, clock,
                interval=30.0, rng=random.Random(3), health=health,
            )  # fmt: skip
            try:
                yield Sync(poller, health, account.id, server, clock)
            finally:
                await connector.aclose()


@pytest.mark.parametrize("channel", CHANNELS, ids=lambda channel: channel.kind)
def test_a_malformed_item_is_quarantined_and_the_rest_of_the_page_stored(
    db: sqlite_utils.Database, clock: FakeClock, arun: Arun, channel: Channel
) -> None:
    async def scenario() -> None:
        async with wired(channel, db, clock) as sync:
            first = await sync.poll()  # the first sync: nothing there yet
            assert first.ok and first.stored == 0, first
            channel.customers(sync.server)
            channel.malformed(sync.server)
            report = await sync.poll()
            assert report.ok, report
            assert (report.stored, report.quarantined) == (2, 1), report
            (entry,) = sync.health.quarantined(sync.account_id)
            assert entry.error and channel.marker in entry.raw_json
            again = await sync.poll()  # the cursor moved past it: nothing is fetched or quarantined twice
            assert (again.stored, again.quarantined) == (0, 0), again
            assert len(sync.health.quarantined(sync.account_id)) == 1

    arun(scenario(), timeout=30)


@pytest.mark.parametrize("channel", CHANNELS, ids=lambda channel: channel.kind)
def test_a_rate_limit_answer_holds_the_next_poll_until_the_channel_resets(
    db: sqlite_utils.Database, clock: FakeClock, arun: Arun, channel: Channel
) -> None:
    async def scenario() -> None:
        async with wired(channel, db, clock) as sync:
            assert (await sync.poll()).ok
            channel.customers(sync.server)
            await sync.poll()
            reset = channel.spend_budget(sync.server, clock)
            assert reset > clock.now() + sync.poller.interval
            report = await sync.poll()
            # Either the page was stored and the budget says wait (throttled), or the channel refused (429/403).
            assert report.throttled or report.health is Health.RATE_LIMITED, report
            assert report.next_attempt_at == math.ceil(reset), (report, reset)
            assert sync.poller.sync_state.get(sync.account_id).next_attempt_at == math.ceil(reset)
            # The account's next poll waits for the reset: not a second sooner, then at once.
            clock.set(math.ceil(reset) - 1)
            await sync.poller.poll_due()
            assert sync.poller.last_report(sync.account_id) is report
            clock.set(math.ceil(reset))
            await sync.poller.poll_due()
            assert sync.poller.last_report(sync.account_id) is not report

    arun(scenario(), timeout=30)
