"""The Bluesky connector, as the app wires it, against the reference PDS and AppView (issue 24).

Customers are real accounts on the dev-env PDS; they mention, reply to and quote the brand through plain XRPC.
The app side is the real runtime (storage on disk, poller, outbox, thread service) with its own
``BlueskyConnector``. ``process_all`` stands for the few seconds a real AppView takes to index what was posted.

Not covered here, because the dev-env cannot serve it: direct messages (chat is a separate service; the
reference PDS answers 500 when it has none to proxy to, which the sync must survive and does) stay covered by
the loopback fake in tests/console/test_bluesky.py.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.channels.base import AccountRef
from console.channels.bluesky import BlueskyConnector, status_rkey
from console.ports import MemorySecretStore
from console.replies.outbox import Outbox, SendOutcome
from console.runtime import Runtime, open_runtime
from console.sync.health import describe
from console.sync.threads import FetchOutcome
from storage.accounts import AccountRepo
from storage.capacity import StatusPostRepo, StatusPostRow
from storage.db import DB_FILENAME, open_database
from storage.mentions import MentionRepo, QueueView
from storage.replies import ReplyRepo
from storage.rows import Health, MentionRow, ReplyState
from tests.e2e.bluesky.network import Customer, ReferenceNetwork
from tests.fakes.clock import FakeClock

Arun = Callable[..., Any]
NewAccount = Callable[[str], Customer]


# -- the app around the connector ------------------------------------------------------------------------


def add_brand(data_dir: Path, brand: Customer, network: ReferenceNetwork, secrets: MemorySecretStore) -> int:
    """The brand's account as the accounts dialog stores it: a row in the database, the app password as secret."""
    db = open_database(data_dir / DB_FILENAME)
    try:
        row = AccountRepo(db).add(kind="bluesky", handle=brand.handle, base_url=network.pds_url, now=0)
    finally:
        db.conn.close()
    secrets.set(f"bluesky:{row.id}", brand.app_password("care-console"))
    return row.id


@asynccontextmanager
async def app(data_dir: Path, clock: FakeClock, secrets: MemorySecretStore) -> AsyncIterator[Runtime]:
    """The app's runtime on ``data_dir``; leaving the block is quitting the app."""
    runtime = open_runtime(data_dir, clock=clock, secrets=secrets)
    try:
        yield runtime
    finally:
        await runtime.aclose()


async def sync(runtime: Runtime, account_id: int) -> Any:
    account = runtime.accounts.get(account_id)
    assert account is not None
    return await runtime.poller.sync_account(account)


def stored(runtime: Runtime, account_id: int) -> dict[str, MentionRow]:
    """Every stored message of the account (heads and follow-ups), by external id."""
    heads = runtime.mentions.queue_ids(QueueView.ALL)
    rows: dict[str, MentionRow] = {}
    for head in runtime.mentions.rows_by_id(heads).values():
        for row in runtime.mentions.thread(head.id):
            if row.account_id == account_id:
                rows[row.external_id] = row
    return rows


def ref(post: dict[str, str]) -> dict[str, str]:
    return {"uri": post["uri"], "cid": post["cid"]}


# -- sync -------------------------------------------------------------------------------------------------


def test_sync_gets_every_mention_reply_and_quote_once_across_a_restart(
    reference_network: ReferenceNetwork, new_account: NewAccount, tmp_path: Path, clock: FakeClock, arun: Arun
) -> None:
    brand, alice, bob, carol = (new_account(name) for name in ("brand", "alice", "bob", "carol"))
    secrets = MemorySecretStore()
    account_id = add_brand(tmp_path, brand, reference_network, secrets)
    announcement = brand.post("We are open until 18:00.", at=clock.now())
    # The AppView indexes each repository on its own worker: a reply indexed before its parent notifies nobody,
    # so the announcement is indexed first, as it would be on a real network long before anyone answers it.
    reference_network.process_all()
    clock.advance(10)
    mention = alice.post(f"@{brand.handle} my order is late", at=clock.now(), mention=brand)
    clock.advance(10)
    reply = bob.post(
        "Is the shop open tomorrow?", at=clock.now(), reply_to={"root": announcement, "parent": announcement}
    )
    clock.advance(10)
    quote = carol.post("Finally, good news", at=clock.now(), quote=ref(announcement))
    reference_network.process_until_notified(brand, [mention["uri"], reply["uri"], quote["uri"]])

    async def first_run() -> None:
        async with app(tmp_path, clock, secrets) as runtime:
            report = await sync(runtime, account_id)
            assert report.ok, describe(report)
            rows = stored(runtime, account_id)
            assert set(rows) == {mention["uri"], reply["uri"], quote["uri"]}
            assert rows[mention["uri"]].author_handle == alice.handle
            assert rows[reply["uri"]].parent_external_id == announcement["uri"]
            # The reply answers a post that is not stored (the brand's own): the thread endpoint fills it in.
            head = rows[reply["uri"]].head_id or rows[reply["uri"]].id
            assert runtime.threads is not None
            fetched = await runtime.threads.fetch(head)
            assert fetched.outcome is FetchOutcome.FETCHED, fetched.message
            context = [message.text for message in runtime.threads.context(head)]
            assert "We are open until 18:00." in context

    arun(first_run(), timeout=60)
    clock.advance(60)
    # A follow-up in her own thread reaches the brand only when it mentions the brand: the AppView notifies
    # the authors of the thread's posts and the accounts mentioned, not those mentioned earlier in it.
    later = alice.post(
        f"@{brand.handle} any news?",
        at=clock.now(),
        mention=brand,
        reply_to={"root": ref(mention), "parent": ref(mention)},
    )
    clock.advance(10)
    dave = new_account("dave")
    new_mention = dave.post(f"hello @{brand.handle} 👋", at=clock.now(), mention=brand)
    reference_network.process_all()

    async def after_restart() -> None:
        async with app(tmp_path, clock, secrets) as runtime:  # the watermark comes back from the database
            report = await sync(runtime, account_id)
            assert report.ok, describe(report)
            assert (report.fetched, report.stored, report.duplicates) == (2, 2, 0)
            rows = stored(runtime, account_id)
            assert set(rows) == {mention["uri"], reply["uri"], quote["uri"], later["uri"], new_mention["uri"]}
            assert rows[later["uri"]].parent_external_id == mention["uri"]
            again = await sync(runtime, account_id)
            assert (again.fetched, again.stored) == (0, 0), "nothing is fetched twice"

    arun(after_restart(), timeout=60)


# -- replies ----------------------------------------------------------------------------------------------


def test_reply_lands_in_the_thread_on_the_appview_with_refs_and_facets(
    reference_network: ReferenceNetwork, new_account: NewAccount, tmp_path: Path, clock: FakeClock, arun: Arun
) -> None:
    brand, alice = new_account("brand"), new_account("alice")
    secrets = MemorySecretStore()
    account_id = add_brand(tmp_path, brand, reference_network, secrets)
    root = alice.post(f"@{brand.handle} where is my parcel?", at=clock.now(), mention=brand)
    clock.advance(10)
    follow = alice.post(
        f"still waiting @{brand.handle}",
        at=clock.now(),
        mention=brand,
        reply_to={"root": ref(root), "parent": ref(root)},
    )
    reference_network.process_all()
    link = "https://shop.example/track?id=42&lang=fr"
    # Emoji with skin tone and ZWJ, a combining accent (e + U+0301), then the mention and a link.
    text = f"Désolée 👩🏽‍💻 cafe\u0301 — @{alice.handle} see {link} ✨"

    async def scenario() -> None:
        async with app(tmp_path, clock, secrets) as runtime:
            report = await sync(runtime, account_id)
            assert report.ok, describe(report)
            rows = stored(runtime, account_id)
            assert runtime.replies is not None
            outbox = runtime.replies.outbox
            reply_id = outbox.queue(rows[follow["uri"]].id, text)
            outcomes = await outbox.drain()
            assert outcomes[reply_id] is SendOutcome.SENT, outbox.replies(rows[follow["uri"]].id)

    arun(scenario(), timeout=60)
    reference_network.process_all()
    thread = alice.thread(root["uri"])["thread"]
    (follow_view,) = thread["replies"]
    (ours,) = follow_view["replies"]
    post = ours["post"]
    assert post["author"]["did"] == brand.did
    record = post["record"]
    assert record["text"] == text
    assert record["reply"] == {"root": ref(root), "parent": ref(follow)}
    encoded = text.encode()
    spans = {
        encoded[facet["index"]["byteStart"] : facet["index"]["byteEnd"]].decode(): facet["features"][0]
        for facet in record["facets"]
    }
    assert spans == {
        f"@{alice.handle}": {"$type": "app.bsky.richtext.facet#mention", "did": alice.did},
        link: {"$type": "app.bsky.richtext.facet#link", "uri": link},
    }
    # The mention facet is what notifies: the customer sees the brand's reply in her notifications.
    notifications = alice.call("GET", "app.bsky.notification.listNotifications", params={"limit": 20})
    assert post["uri"] in {n["uri"] for n in notifications["notifications"] if n["reason"] in ("reply", "mention")}


# -- status posts -----------------------------------------------------------------------------------------


class AppCrashed(BaseException):
    """The process died: nothing after this point ran."""


class CrashAfterRequest(StatusPostRepo):
    """The status post table of a process that dies after the PDS stored the post, before ``sent`` is written."""

    def mark_sent(self, post_id: int, *, external_id: str, url: str, at: int, actor: str = "outbox") -> StatusPostRow:
        raise AppCrashed


@asynccontextmanager
async def outbox_over(
    data_dir: Path, account_id: int, brand: Customer, network: ReferenceNetwork, secrets: MemorySecretStore,
    clock: FakeClock, statuses: type[StatusPostRepo],
) -> AsyncIterator[Outbox]:  # fmt: skip
    db = open_database(data_dir / DB_FILENAME)
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(30.0)) as client:
            account = AccountRef(account_id, "bluesky", brand.handle, network.pds_url)
            connector = BlueskyConnector(client, account=account, secrets=secrets, clock=clock)
            yield Outbox(
                ReplyRepo(db), MentionRepo(db), AccountRepo(db), {account_id: connector}, clock,
                rng=random.Random(1), statuses=statuses(db),
            )  # fmt: skip
    finally:
        db.conn.close()


def test_status_post_is_posted_once_across_a_crash_between_request_and_record(
    reference_network: ReferenceNetwork, new_account: NewAccount, tmp_path: Path, clock: FakeClock, arun: Arun
) -> None:
    brand = new_account("brand")
    secrets = MemorySecretStore()
    account_id = add_brand(tmp_path, brand, reference_network, secrets)
    text = "Replies take about 20 minutes right now ⏳ https://status.shop.example"

    async def crash() -> int:
        async with outbox_over(
            tmp_path, account_id, brand, reference_network, secrets, clock, CrashAfterRequest
        ) as outbox:
            post_id = outbox.post_status(account_id, text)
            with pytest.raises(AppCrashed):
                await outbox.drain()
            return post_id

    post_id = arun(crash(), timeout=60)
    assert [r["value"]["text"] for r in brand.records()] == [text]  # it reached the PDS
    clock.advance(30)

    async def restart() -> StatusPostRow | None:
        async with outbox_over(
            tmp_path, account_id, brand, reference_network, secrets, clock, StatusPostRepo
        ) as outbox:
            before = outbox.status_post(post_id)
            assert before is not None and before.state is ReplyState.SENDING  # unknown whether it was posted
            await outbox.drain()
            return outbox.status_post(post_id)

    after = arun(restart(), timeout=60)
    records = brand.records()
    assert [r["value"]["text"] for r in records] == [text], "posted exactly once"
    assert after is not None and after.state is ReplyState.SENT
    assert after.external_id == records[0]["uri"]
    assert records[0]["uri"].rsplit("/", 1)[1] == status_rkey(after.idempotency_key)


# -- sessions ---------------------------------------------------------------------------------------------


def session_key(account_id: int) -> str:
    return f"bluesky:{account_id}:session"


def expire_stored_access(secrets: MemorySecretStore, account_id: int, network: ReferenceNetwork) -> str:
    """Two hours pass: the stored session's access JWT is now an expired one (its refresh JWT still works)."""
    session = json.loads(secrets.get(session_key(account_id)) or "{}")
    session["accessJwt"] = network.expired_access_jwt(session["did"])
    secrets.set(session_key(account_id), json.dumps(session))
    return str(session["refreshJwt"])


def test_expired_session_is_refreshed_without_the_app_password(
    reference_network: ReferenceNetwork, new_account: NewAccount, tmp_path: Path, clock: FakeClock, arun: Arun
) -> None:
    brand, alice = new_account("brand"), new_account("alice")
    secrets = MemorySecretStore()
    account_id = add_brand(tmp_path, brand, reference_network, secrets)

    async def first() -> None:
        async with app(tmp_path, clock, secrets) as runtime:
            report = await sync(runtime, account_id)
            assert report.ok, describe(report)

    arun(first(), timeout=60)
    old_refresh = expire_stored_access(secrets, account_id, reference_network)
    secrets.delete(f"bluesky:{account_id}")  # only the session can be used now
    mention = alice.post(f"@{brand.handle} hi", at=clock.now(), mention=brand)
    reference_network.process_all()

    async def later() -> None:
        async with app(tmp_path, clock, secrets) as runtime:
            report = await sync(runtime, account_id)
            assert report.ok, describe(report)
            assert mention["uri"] in stored(runtime, account_id)

    arun(later(), timeout=60)
    renewed = json.loads(secrets.get(session_key(account_id)) or "{}")
    assert renewed["refreshJwt"] != old_refresh  # the PDS rotated the refresh JWT and the app kept the new one


def test_revoked_app_password_asks_to_sign_in_again(
    reference_network: ReferenceNetwork, new_account: NewAccount, tmp_path: Path, clock: FakeClock, arun: Arun
) -> None:
    brand = new_account("brand")
    secrets = MemorySecretStore()
    account_id = add_brand(tmp_path, brand, reference_network, secrets)

    async def first() -> None:
        async with app(tmp_path, clock, secrets) as runtime:
            report = await sync(runtime, account_id)
            assert report.ok, describe(report)

    arun(first(), timeout=60)
    brand.revoke_app_password("care-console")  # in the Bluesky app's settings
    expire_stored_access(secrets, account_id, reference_network)

    async def later() -> None:
        async with app(tmp_path, clock, secrets) as runtime:
            report = await sync(runtime, account_id)
            assert report.health is Health.AUTH_EXPIRED, describe(report)
            assert "Sign in again" in describe(report)
            (health,) = runtime.health.snapshot().accounts
            assert health.needs_sign_in

    arun(later(), timeout=60)


# -- deleted posts and blocks -----------------------------------------------------------------------------


def test_deleted_post_and_blocked_customer_show_as_the_appview_reports_them(
    reference_network: ReferenceNetwork, new_account: NewAccount, tmp_path: Path, clock: FakeClock, arun: Arun
) -> None:
    brand, alice, bob = new_account("brand"), new_account("alice"), new_account("bob")
    secrets = MemorySecretStore()
    account_id = add_brand(tmp_path, brand, reference_network, secrets)
    gone = alice.post(f"@{brand.handle} my card was charged twice", at=clock.now(), mention=brand)
    clock.advance(10)
    blocked = bob.post(f"@{brand.handle} worst service ever", at=clock.now(), mention=brand)
    reference_network.process_all()

    async def scenario() -> None:
        async with app(tmp_path, clock, secrets) as runtime:
            report = await sync(runtime, account_id)
            assert report.ok, describe(report)
            await asyncio.gather(*runtime.tasks)  # the first check for deletions, scheduled after the sync
            alice.delete(gone["uri"])
            bob.block(brand, at=clock.now())
            reference_network.process_all()
            clock.advance(3600)
            report = await sync(runtime, account_id)
            assert report.ok, describe(report)
            await asyncio.gather(*runtime.tasks)  # the next check, an hour later
            rows = stored(runtime, account_id)
            assert rows[gone["uri"]].upstream_deleted_at is not None  # shown as deleted by the customer
            assert rows[blocked["uri"]].upstream_deleted_at is None  # hidden by a block, not deleted
            assert runtime.threads is not None
            deleted = await runtime.threads.fetch(rows[gone["uri"]].id)
            assert deleted.outcome is FetchOutcome.FAILED
            assert "deleted on Bluesky" in deleted.message
            hidden = await runtime.threads.fetch(rows[blocked["uri"]].id)
            assert hidden.outcome is FetchOutcome.FAILED
            assert "has blocked this account" in hidden.message

    arun(scenario(), timeout=60)
