"""Replies seen on the channel (issue #22 item 5): the brand's own replies posted from anywhere are recognised
during sync, shown in the thread, meet the SLA, and keep a second copy of the app from answering twice.

Everything runs against the sandbox's real loopback Mastodon API; time comes from a fake clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.channels.base import AccountRef
from console.channels.bluesky import BlueskyConnector, parse_author_feed
from console.channels.discourse import DiscourseConnector
from console.channels.mastodon import MastodonConnector, parse_own_posts
from console.ports import MemorySecretStore
from console.replies.our_replies import merge_thread, our_replies
from console.replies.outbox import SendOutcome
from console.runtime import Runtime, open_runtime
from console.sandbox import SandboxServer
from console.sandbox.faults import Fault, FaultRule
from console.sla.bands import SlaPolicy
from storage.accounts import AccountRepo
from storage.db import DB_FILENAME, open_database
from storage.mentions import MentionRepo
from storage.replies import ReplyRepo
from storage.rows import DeadlineKind, MentionKind, NewMention, ReplyState
from storage.seen_replies import SeenReplyRepo, is_seen_key
from tests import shared_fixtures
from tests.fakes.bluesky_server import FakeBlueskyServer
from tests.fakes.clock import FakeClock
from tests.fakes.discourse_server import FakeDiscourseServer

Arun = Callable[..., Any]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(clock: FakeClock) -> Iterator[SandboxServer]:
    with SandboxServer(clock=clock, seed=5) as running:
        yield running


def _install(path: Path, server: SandboxServer, clock: FakeClock) -> Runtime:
    """A solo install of the app with the brand's Mastodon account on the sandbox (its own data folder)."""
    db = open_database(path / DB_FILENAME)
    account = AccountRepo(db).add(kind="mastodon", handle="care", base_url=server.base_url, now=int(clock.now()))
    db.conn.close()
    secrets = MemorySecretStore()
    secrets.set(f"mastodon:{account.id}", server.token)
    return open_runtime(path, clock=clock, secrets=secrets)


def _status_of(server: SandboxServer, notification_id: str) -> str:
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {server.token}"}) as client:
        return str(client.get(f"/api/v1/notifications/{notification_id}").json()["status"]["id"])


def _met(runtime: Runtime, item: int, kind: DeadlineKind) -> int | None:
    (deadline,) = [d for d in runtime.queue.deadlines(item) if d.kind is kind]
    return deadline.met_at


def test_two_solo_installs_on_one_account_never_answer_the_same_customer_twice(
    tmp_path: Path, server: SandboxServer, clock: FakeClock, arun: Arun
) -> None:
    server.post_mention(author="alice", text="@care my parcel never arrived", display_name="Alice")
    a = _install(tmp_path / "a", server, clock)
    b = _install(tmp_path / "b", server, clock)
    try:
        for runtime in (a, b):
            (report,) = arun(runtime.poller.sync_once())
            assert report.ok and report.stored == 1, report.error
        (item_a,) = a.mentions.queue_ids()
        (item_b,) = b.mentions.queue_ids()
        # B's agent writes an answer; before it leaves, A's agent answers and A's outbox posts it.
        clock.advance(30)
        queued = b.replies.outbox.queue(item_b, "Sorry about that, Alice! Could you DM the order number?")
        clock.advance(30)
        a.replies.outbox.queue(item_a, "Hi Alice, we are on it: please DM us the order number.")
        assert list(arun(a.replies.outbox.drain()).values()) == [SendOutcome.SENT]
        posted_by_a = clock.now()
        assert len(server.statuses_posted()) == 1

        clock.advance(60)
        (report,) = arun(b.poller.sync_once())
        assert report.ok, report.error
        # B's thread shows A's answer, as sent from elsewhere.
        rows = b.replies.outbox.replies(item_b)
        (seen,) = [r for r in rows if is_seen_key(r.idempotency_key)]
        assert seen.state is ReplyState.SENT and seen.text.endswith("please DM us the order number.")
        entries = our_replies(rows, b.queue.history(item_b))
        (shown,) = [e for e in entries if e.elsewhere]
        assert shown.state_text == "Sent from elsewhere" and shown.agent == "Care Console"
        assert "on Mastodon" in shown.labels
        # The item met its first response at A's send, and counts as answered.
        assert _met(b, item_b, DeadlineKind.FIRST_RESPONSE) == int(posted_by_a)
        assert item_b in b.queue.answered([item_b])
        # B's queued reply is not posted blindly: it fails with a plain reason, and the sandbox got one post.
        assert arun(b.replies.outbox.drain()) == {queued: SendOutcome.FAILED}
        failed = b.replies.outbox.reply(queued)
        assert failed is not None and failed.state is ReplyState.FAILED
        assert failed.error.startswith("Answered on Mastodon at ") and "your reply was not sent" in failed.error
        assert len(server.statuses_posted()) == 1
        # The agent decides: Retry sends it after all.
        clock.advance(5)
        b.replies.outbox.retry(queued)
        assert arun(b.replies.outbox.drain()) == {queued: SendOutcome.SENT}
        assert len(server.statuses_posted()) == 2
        # And A, syncing, sees B's reply (not its own again).
        clock.advance(60)
        arun(a.poller.sync_once())
        seen_by_a = [r for r in a.replies.outbox.replies(item_a) if is_seen_key(r.idempotency_key)]
        assert [r.text for r in seen_by_a] == ["@alice Sorry about that, Alice! Could you DM the order number?"]
    finally:
        arun(a.aclose())
        arun(b.aclose())


def test_a_reply_from_the_channels_own_app_is_recorded_once_with_its_event(
    tmp_path: Path, server: SandboxServer, clock: FakeClock, arun: Arun
) -> None:
    notification = server.post_mention(author="bob@elsewhere.example", text="@care is the shop open on Sunday?")
    runtime = _install(tmp_path / "solo", server, clock)
    try:
        arun(runtime.poller.sync_once())
        (item,) = runtime.mentions.queue_ids()
        clock.advance(120)
        status = server.post_as_brand(
            in_reply_to_id=_status_of(server, notification), text="@bob Yes, 10 to 16.", application="Tusky"
        )
        clock.advance(60)
        for _ in range(2):  # a second sync finds nothing new: recorded once
            (report,) = arun(runtime.poller.sync_once())
            assert report.ok, report.error
        rows = [r for r in runtime.replies.outbox.replies(item) if is_seen_key(r.idempotency_key)]
        assert [(r.external_id, r.text) for r in rows] == [(status, "@bob Yes, 10 to 16.")]
        events = [e for e in runtime.queue.history(item) if e.kind == "reply_seen"]
        assert len(events) == 1 and events[0].actor == "on Mastodon"
        assert '"external_id": "' + status + '"' in events[0].data and '"client": "Tusky"' in events[0].data
        thread = merge_thread(runtime.queue.thread(item), rows, runtime.queue.history(item))
        assert [getattr(e, "agent", None) for e in thread][-1] == "Tusky"
        assert _met(runtime, item, DeadlineKind.FIRST_RESPONSE) == int(clock.now()) - 60
    finally:
        arun(runtime.aclose())


def test_our_own_outbox_replies_are_never_recorded_as_seen(
    tmp_path: Path, server: SandboxServer, clock: FakeClock, arun: Arun
) -> None:
    server.post_mention(author="carol", text="@care hello?")
    runtime = _install(tmp_path / "solo", server, clock)
    try:
        arun(runtime.poller.sync_once())
        (item,) = runtime.mentions.queue_ids()
        runtime.replies.outbox.queue(item, "Hello Carol, how can we help?")
        arun(runtime.replies.outbox.drain())
        clock.advance(60)
        arun(runtime.poller.sync_once())
        rows = runtime.replies.outbox.replies(item)
        assert [(r.state, is_seen_key(r.idempotency_key)) for r in rows] == [(ReplyState.SENT, False)]
        assert not [e for e in runtime.queue.history(item) if e.kind == "reply_seen"]
    finally:
        arun(runtime.aclose())


def test_a_reply_to_a_conversation_never_stored_is_left_alone_and_a_reply_in_a_thread_is_found(
    tmp_path: Path, server: SandboxServer, clock: FakeClock, arun: Arun
) -> None:
    first = server.post_mention(author="dana", text="@care my card was charged twice")
    runtime = _install(tmp_path / "solo", server, clock)
    try:
        arun(runtime.poller.sync_once())
        (item,) = runtime.mentions.queue_ids()
        clock.advance(30)
        # A reply to the pinned announcement (no stored item) is not a reply to any customer here.
        announcement = next(s for s in _own_statuses(server) if s["in_reply_to_id"] is None)["id"]
        server.post_as_brand(in_reply_to_id=announcement, text="Update: the shop is open again.")
        # Two answers in a row from the app: the second answers the first (a thread of the brand's own posts).
        one = server.post_as_brand(in_reply_to_id=_status_of(server, first), text="@dana Sorry! Checking now.")
        server.post_as_brand(in_reply_to_id=one, text="@dana Refunded: it shows in 3 days.")
        clock.advance(30)
        arun(runtime.poller.sync_once())
        rows = [r for r in runtime.replies.outbox.replies(item) if is_seen_key(r.idempotency_key)]
        assert [r.text for r in rows] == ["@dana Sorry! Checking now.", "@dana Refunded: it shows in 3 days."]
        assert {r.mention_id for r in rows} == {item}
    finally:
        arun(runtime.aclose())


def _own_statuses(server: SandboxServer, **params: str) -> list[dict[str, Any]]:
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {server.token}"}) as client:
        me = client.get("/api/v1/accounts/verify_credentials").json()["id"]
        response = client.get(f"/api/v1/accounts/{me}/statuses", params={"limit": "40", **params})
        assert response.status_code == 200
        body: list[dict[str, Any]] = response.json()
        return body


def test_sandbox_account_statuses_pages_like_mastodon(server: SandboxServer, clock: FakeClock) -> None:
    notification = server.post_mention(author="erin", text="@care hi")
    parent = _status_of(server, notification)
    ids = []
    for n in range(5):
        clock.advance(1)
        ids.append(server.post_as_brand(in_reply_to_id=parent, text=f"reply {n}"))
    newest_first = [s["id"] for s in _own_statuses(server)]
    assert newest_first[:5] == ids[::-1]  # then the announcement
    assert [s["id"] for s in _own_statuses(server, min_id=ids[1], limit="2")] == [ids[3], ids[2]]
    assert [s["id"] for s in _own_statuses(server, since_id=ids[1], limit="2")] == [ids[4], ids[3]]
    assert [s["id"] for s in _own_statuses(server, max_id=ids[1])][:1] == [ids[0]]
    assert [s["in_reply_to_id"] for s in _own_statuses(server, exclude_replies="true")] == [None]
    assert _own_statuses(server)[0]["application"] == {"name": "Mastodon for iOS", "website": None}


def test_connector_reads_own_replies_with_one_request_per_poll(
    server: SandboxServer, clock: FakeClock, arun: Arun
) -> None:
    notification = server.post_mention(author="finn", text="@care hi")
    parent = _status_of(server, notification)
    secrets = MemorySecretStore()
    secrets.set("mastodon:1", server.token)

    async def scenario() -> None:
        async with httpx.AsyncClient() as client:
            connector = MastodonConnector(
                client, account=AccountRef(1, "mastodon", "care", server.base_url), secrets=secrets, clock=clock
            )
            first = await connector.fetch_own_posts(None, since=None)
            assert first.posts == [] and first.next_cursor is not None
            clock.advance(5)
            posted = server.post_as_brand(in_reply_to_id=parent, text="@finn hello!")
            before = len(server.requests)
            batch = await connector.fetch_own_posts(first.next_cursor, since=None)
            assert len(server.requests) - before == 1
            assert [(p.external_id, p.parent_external_id, p.text, p.client) for p in batch.posts] == [
                (posted, parent, "@finn hello!", "Mastodon for iOS")
            ]
            again = await connector.fetch_own_posts(batch.next_cursor, since=None)
            assert again.posts == [] and again.next_cursor is None

    arun(scenario())


def test_parse_own_posts_keeps_replies_only_and_skips_malformed_entries() -> None:
    base: dict[str, Any] = {
        "created_at": "2026-08-01T13:51:42.823Z",
        "visibility": "public",
        "content": "<p>hi</p>",
        "account": {"id": "7", "acct": "care"},
    }
    payload = [
        {**base, "id": "12", "in_reply_to_id": "3", "application": {"name": "Ivory"}},
        {**base, "id": "11", "in_reply_to_id": None},
        {**base, "id": "10", "in_reply_to_id": "2", "account": {"id": "8", "acct": "someone"}},
        {"id": "9"},
    ]
    posts, ids = parse_own_posts(payload, own_id="7")
    assert [(p.external_id, p.parent_external_id, p.client, p.text) for p in posts] == [("12", "3", "Ivory", "hi")]
    assert ids == ["12", "11", "10"]
    with pytest.raises(ValueError, match="expected a list of statuses"):
        parse_own_posts({"error": "nope"})


def test_parse_own_posts_reads_a_recorded_reply_of_a_real_server() -> None:
    status = shared_fixtures.recorded("mastodon", "status_reply.json")["response"]["json"]
    posts, ids = parse_own_posts([status], own_id=status["account"]["id"])
    (post,) = posts
    assert ids == [status["id"]]
    assert (post.external_id, post.parent_external_id) == (status["id"], status["in_reply_to_id"])
    assert post.client == "Mastodon.py test suite" and post.url == status["url"] and post.text


# -- Bluesky: the account's own feed (app.bsky.feed.getAuthorFeed, posts_with_replies) -------------------------


def _bluesky(
    server: FakeBlueskyServer, secrets: MemorySecretStore, clock: FakeClock, client: httpx.AsyncClient
) -> BlueskyConnector:
    ref = AccountRef(id=3, kind="bluesky", handle=server.handle, base_url=server.base_url)
    return BlueskyConnector(client, account=ref, secrets=secrets, clock=clock)


def test_bluesky_reads_the_brands_replies_from_other_apps_once(clock: FakeClock, arun: Arun) -> None:
    secrets = MemorySecretStore()
    secrets.set("bluesky:3", "app-pass-1234")
    with FakeBlueskyServer() as server:
        question = server.post("alice.test", "@brand.test where is my parcel?")
        start = server.now
        server.post_as_brand("@alice.test Replied long ago", reply_to=question, at=start - 3 * 86400)
        recent = server.post_as_brand("@alice.test It left the depot today.", reply_to=question, at=start + 10)

        async def scenario() -> None:
            async with httpx.AsyncClient(trust_env=False) as client:
                connector = _bluesky(server, secrets, clock, client)
                first = await connector.fetch_own_posts(None, since=int(start) - 3600)
                assert [(p.external_id, p.parent_external_id) for p in first.posts] == [(recent, question)]
                assert first.posts[0].text == "@alice.test It left the depot today."
                later = server.post_as_brand("@alice.test Delivered!", reply_to=recent)
                before = len(server.requests)
                second = await connector.fetch_own_posts(first.next_cursor, since=None)
                assert len(server.requests) - before == 1  # one request per poll
                # The overlap reads the last one again (storing is idempotent); the new one is there.
                assert [p.external_id for p in second.posts][-1] == later
                assert later.startswith("at://did:plc:brand/") and second.next_cursor is not None

        arun(scenario())


def test_parse_author_feed_keeps_own_replies_and_leaves_reposts_out() -> None:
    def view(uri: str, did: str, reply_to: str | None) -> dict[str, Any]:
        record: dict[str, Any] = {"text": "hi", "createdAt": "2026-08-01T13:51:42.823Z"}
        if reply_to:
            record["reply"] = {"root": {"uri": reply_to, "cid": "c"}, "parent": {"uri": reply_to, "cid": "c"}}
        return {"uri": uri, "cid": "c", "author": {"did": did, "handle": "h.test"}, "record": record}

    payload = {
        "feed": [
            {"post": view("at://did:plc:me/app.bsky.feed.post/1", "did:plc:me", "at://x/app.bsky.feed.post/9")},
            {"post": view("at://did:plc:me/app.bsky.feed.post/2", "did:plc:me", None)},
            {"post": view("at://did:plc:x/app.bsky.feed.post/3", "did:plc:x", "at://y/p/1"), "reason": {"by": 1}},
            {"post": {"uri": "broken"}},
        ],
        "cursor": "2026-08-01T13:00:00.000Z",
    }
    page = parse_author_feed(payload, "did:plc:me")
    assert [p.external_id for p in page.replies] == ["at://did:plc:me/app.bsky.feed.post/1"]
    assert len(page.times) == 2 and page.cursor == "2026-08-01T13:00:00.000Z"


# -- Discourse: the user's replies (user_actions.json, filter 5) ---------------------------------------------


def test_discourse_reads_the_brands_replies_posted_in_the_browser(clock: FakeClock, arun: Arun) -> None:
    secrets = MemorySecretStore()
    secrets.set("discourse:5", "admin-key-1")
    with FakeDiscourseServer() as server:
        topic = server.topic("alice", "@brand the app crashes on start")
        number = server.reply(topic, "brand", "Which version do you run?")
        server.reply(topic, "alice", "4.2")
        answer = server.reply(topic, "brand", "Fixed in 4.3, thanks!", reply_to=3)

        async def scenario() -> None:
            async with httpx.AsyncClient(trust_env=False) as client:
                ref = AccountRef(id=5, kind="discourse", handle="brand", base_url=server.base_url)
                connector = DiscourseConnector(client, account=ref, secrets=secrets, clock=clock)
                first = await connector.fetch_own_posts(None, since=0)
                assert [(p.external_id, p.parent_external_id, p.text) for p in first.posts] == [
                    (f"{topic}#{number}", f"{topic}#1", "Which version do you run?"),
                    (f"{topic}#{answer}", f"{topic}#3", "Fixed in 4.3, thanks!"),
                ]
                assert first.posts[1].url.endswith(f"/t/topic-{topic}/{topic}/{answer}")
                before = len(server.requests)
                again = await connector.fetch_own_posts(first.next_cursor, since=None)
                assert len(server.requests) - before == 1
                assert {p.external_id for p in again.posts} <= {p.external_id for p in first.posts}

        arun(scenario())


def test_sandbox_control_endpoint_posts_as_the_brand_from_another_app(server: SandboxServer) -> None:
    parent = _status_of(server, server.post_mention(author="gil", text="@care refund?"))
    with httpx.Client(base_url=server.base_url) as client:
        answer = client.post("/_sandbox/brand_reply", json={"in_reply_to_id": parent, "text": "@gil Done!"})
        assert answer.status_code == 200
        assert client.post("/_sandbox/brand_reply", json={"in_reply_to_id": "nope", "text": "x"}).status_code == 404
        assert client.post("/_sandbox/brand_reply", json={"in_reply_to_id": parent}).status_code == 422
    (newest, *_rest) = _own_statuses(server)
    assert newest["id"] == answer.json()["id"] and newest["in_reply_to_id"] == parent
    assert newest["application"]["name"] == "Mastodon for iOS"
    assert server.statuses_posted() == []  # not through the API: the app's own posts are counted apart


def _own_post_reads(server: SandboxServer) -> int:
    return sum(1 for method, path, _query in server.requests if method == "GET" and path.endswith("/statuses"))


def test_a_first_read_goes_back_a_few_pages_at_most_then_one_request_a_poll(
    tmp_path: Path, server: SandboxServer, clock: FakeClock, arun: Arun
) -> None:
    question = _status_of(server, server.post_mention(author="hana", text="@care where is my order?"))
    announcement = next(s for s in _own_statuses(server) if s["in_reply_to_id"] is None)["id"]
    for n in range(150):  # a busy account: many replies to others since the open item came in
        clock.advance(1)
        server.post_as_brand(in_reply_to_id=announcement, text=f"Thanks for the kind words #{n}")
    reads = _own_post_reads(server)
    runtime = _install(tmp_path / "solo", server, clock)
    try:
        arun(runtime.poller.sync_once())
        assert _own_post_reads(server) - reads == 3  # bounded: three pages of 40, not the whole history
        (item,) = runtime.mentions.queue_ids()
        clock.advance(10)
        server.post_as_brand(in_reply_to_id=question, text="@hana It ships tomorrow.")
        clock.advance(10)
        arun(runtime.poller.sync_once())
        assert _own_post_reads(server) - reads == 4
        texts = [r.text for r in runtime.replies.outbox.replies(item) if is_seen_key(r.idempotency_key)]
        assert texts == ["@hana It ships tomorrow."]
    finally:
        arun(runtime.aclose())


def test_a_reply_written_after_the_seen_one_was_shown_is_sent(
    tmp_path: Path, server: SandboxServer, clock: FakeClock, arun: Arun
) -> None:
    question = _status_of(server, server.post_mention(author="ivan", text="@care is the sale on?"))
    runtime = _install(tmp_path / "solo", server, clock)
    try:
        arun(runtime.poller.sync_once())
        (item,) = runtime.mentions.queue_ids()
        clock.advance(10)
        server.post_as_brand(in_reply_to_id=question, text="@ivan Yes, until Sunday.")
        clock.advance(10)
        arun(runtime.poller.sync_once())
        clock.advance(10)
        # The agent saw the answer in the thread and adds to it: nothing in the way.
        reply = runtime.replies.outbox.queue(item, "And the code SALE10 takes 10 % more off.")
        assert arun(runtime.replies.outbox.drain()) == {reply: SendOutcome.SENT}
    finally:
        arun(runtime.aclose())


def test_our_reply_recorded_as_sent_replaces_the_same_post_seen_while_it_was_on_its_way(tmp_path: Path) -> None:
    db = open_database(None)
    try:
        account = AccountRepo(db).add(kind="mastodon", handle="care", base_url="https://m.example", now=100)
        message = NewMention(
            account_id=account.id, external_id="m1", author_external_id="7", author_handle="jo", author_name="Jo",
            text="@care hi", url="https://m.example/1", posted_at=100, kind=MentionKind.PUBLIC, visibility="public",
            parent_external_id=None, raw_json="{}",
        )  # fmt: skip
        item = MentionRepo(db).store_batch(
            [message],
            channel="mastodon",
            fetched_at=100,
            plan=SlaPolicy().plan,
        ).inserted_ids[0]  # fmt: skip
        replies, seen = ReplyRepo(db), SeenReplyRepo(db)
        ours = replies.enqueue(mention_id=item, target_id=item, text="Hello", visibility="public", purpose="reply",
                               idempotency_key="k1", now=110, actor="Sam")  # fmt: skip
        # The sync read the account's posts after the channel took our reply, before the outbox recorded it.
        record = seen.record(account_id=account.id, mention_id=item, external_id="r9", url="u", text="Hello",
                             posted_at=111, visibility="public", now=112, actor="on Mastodon")  # fmt: skip
        assert record is not None and seen.is_known(account.id, "r9")
        assert seen.record(account_id=account.id, mention_id=item, external_id="r9", url="u", text="Hello",
                           posted_at=111, visibility="public", now=113, actor="on Mastodon") is None  # fmt: skip
        replies.mark_sent(ours.id, external_id="r9", url="u", at=111)
        assert [(r.id, r.state) for r in replies.for_mention(item)] == [(ours.id, ReplyState.SENT)]
    finally:
        db.conn.close()


def test_a_failed_read_of_the_own_posts_keeps_the_poll_and_the_cursor_and_is_made_up_next_poll(
    tmp_path: Path, server: SandboxServer, clock: FakeClock, arun: Arun
) -> None:
    question = _status_of(server, server.post_mention(author="jo", text="@care my code does not work"))
    runtime = _install(tmp_path / "solo", server, clock)
    try:
        arun(runtime.poller.sync_once())
        (item,) = runtime.mentions.queue_ids()
        account_id = runtime.mentions.rows_by_id([item])[item].account_id
        db = open_database(tmp_path / "solo" / DB_FILENAME)
        try:
            assert SeenReplyRepo(db).cursor(account_id) is not None  # the first poll read the own posts too
        finally:
            db.conn.close()
        clock.advance(10)
        server.post_as_brand(in_reply_to_id=question, text="@jo Try SPRING5 instead.")
        # The mentions answer; the own-posts read right after it meets a 503.
        server.set_faults([FaultRule(Fault.UNAVAILABLE, count=1, after=1)])
        clock.advance(60)
        (report,) = arun(runtime.poller.sync_once())
        assert report.ok, report.error
        assert not [r for r in runtime.replies.outbox.replies(item) if is_seen_key(r.idempotency_key)]
        clock.advance(60)
        (report,) = arun(runtime.poller.sync_once())
        assert report.ok, report.error
        texts = [r.text for r in runtime.replies.outbox.replies(item) if is_seen_key(r.idempotency_key)]
        assert texts == ["@jo Try SPRING5 instead."]
    finally:
        arun(runtime.aclose())
