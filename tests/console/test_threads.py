"""ThreadService: the whole thread is fetched from the channel when it is not local, cached, offline said plainly."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import sqlite_utils
from hypothesis import given
from hypothesis import strategies as st

from console.channels.base import AccountRef
from console.channels.mastodon import MastodonConnector, parse_status
from console.ports import MemorySecretStore
from console.sla.bands import SlaPolicy
from console.sync.store_worker import to_new_mention
from console.sync.threads import FetchOutcome, ThreadService
from storage.accounts import AccountRepo
from storage.mentions import MentionRepo
from storage.thread_context import ThreadContextRepo
from storage.upstream import UpstreamEdit, UpstreamRepo
from tests.fakes.clock import FakeClock
from tests.fakes.http_server import FakeHttpServer

T = TypeVar("T")
Arun = Callable[[Awaitable[T]], T]


def status(sid: str, text: str, *, author: str = "carol", parent: str | None = None, minute: int = 0) -> dict[str, Any]:
    return {
        "id": sid,
        "created_at": f"2026-01-01T00:{minute:02d}:00.000Z",
        "edited_at": None,
        "in_reply_to_id": parent,
        "visibility": "public",
        "url": f"https://other.example/@{author}/{sid}",
        "content": f"<p>{text}</p>",
        "account": {
            "id": author,
            "username": author,
            "acct": f"{author}@other.example",
            "display_name": author.title(),
        },
    }


class Setup:
    def __init__(self, db: sqlite_utils.Database, clock: FakeClock) -> None:
        self.account = AccountRepo(db).add(kind="mastodon", handle="brand", base_url="https://x.example", now=0)
        self.mentions = MentionRepo(db)
        self.repo = ThreadContextRepo(db)
        self.secrets = MemorySecretStore()
        self.secrets.set(f"mastodon:{self.account.id}", "tok")
        self.clock = clock

    def store(self, *statuses: dict[str, Any]) -> int:
        items = [to_new_mention(self.account.id, parse_status(s)) for s in statuses]
        result = self.mentions.store_batch(items, channel="mastodon", fetched_at=0, plan=SlaPolicy().plan)
        return result.new_heads[0]

    def service(self, base_url: str, client: httpx.AsyncClient) -> ThreadService:
        ref = AccountRef(self.account.id, "mastodon", "brand", base_url)
        connector = MastodonConnector(client, account=ref, secrets=self.secrets, clock=self.clock)
        return ThreadService(self.repo, {self.account.id: connector}, self.clock)


def test_missing_context_is_fetched_once_and_cached(
    db: sqlite_utils.Database, clock: FakeClock, arun: Arun[Any]
) -> None:
    setup = Setup(db, clock)
    # Carol answers Bob's post (never synced: it does not mention the brand) and tags the brand.
    head = setup.store(status("20", "@brand same problem here", parent="10", minute=5))
    with FakeHttpServer() as server:
        server.reply(json=status("20", "@brand same problem here", parent="10", minute=5))
        server.reply(
            json={
                "ancestors": [status("10", "My parcel is lost", author="bob", minute=1)],
                "descendants": [status("30", "Same for me", author="dave", parent="20", minute=7)],
            }
        )

        async def scenario() -> Any:
            async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
                threads = setup.service(server.base_url, client)
                assert threads.needs_fetch(head)
                result = await threads.fetch(head)
                return threads, result

        threads, result = arun(scenario())
        paths = [r.path for r in server.requests]

    assert result.outcome is FetchOutcome.FETCHED and result.added == 2 and result.message == ""
    assert paths == ["/api/v1/statuses/20", "/api/v1/statuses/20/context"]
    context = threads.context(head)
    assert [(m.author_handle, m.text) for m in context] == [
        ("bob@other.example", "My parcel is lost"),
        ("dave@other.example", "Same for me"),
    ]
    # Cached in the database: a new service (a restart) has it without asking the channel.
    assert not threads.needs_fetch(head)
    assert [m.external_id for m in ThreadService(ThreadContextRepo(db), {}, clock).context(head)] == ["10", "30"]
    # The cached copy gets old: showing the item again fetches it again.
    clock.advance(3600)
    assert threads.needs_fetch(head)


def test_a_local_thread_is_not_fetched(db: sqlite_utils.Database, clock: FakeClock) -> None:
    setup = Setup(db, clock)
    head = setup.store(status("10", "@brand where is my parcel?"))
    follow_up = to_new_mention(setup.account.id, parse_status(status("11", "@brand hello?", parent="10", minute=3)))
    setup.mentions.store_batch([follow_up], channel="mastodon", fetched_at=0, plan=SlaPolicy().plan)
    threads = ThreadService(setup.repo, {setup.account.id: object()}, clock)  # type: ignore[dict-item]
    assert not threads.needs_fetch(head)  # no parent
    assert ThreadService(setup.repo, {}, clock).needs_fetch(head) is False  # no connector (manual intake)


def test_offline_gives_a_clear_message_and_no_retry_storm(
    db: sqlite_utils.Database, clock: FakeClock, arun: Arun[Any]
) -> None:
    setup = Setup(db, clock)
    head = setup.store(status("20", "@brand same here", parent="10"))
    server = FakeHttpServer().start()
    base_url = server.base_url
    server.stop()  # nothing listens there any more: the connection is refused

    async def scenario() -> Any:
        async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
            threads = setup.service(base_url, client)
            return threads, await threads.fetch(head)

    threads, result = arun(scenario())
    assert result.outcome is FetchOutcome.OFFLINE
    assert result.message.startswith("Offline:") and "showing what is stored here" in result.message
    assert threads.context(head) == []
    assert not threads.needs_fetch(head)  # showing the item again does not hammer a dead network
    clock.advance(61)
    assert threads.needs_fetch(head)


def test_a_deleted_parent_is_a_plain_failure(db: sqlite_utils.Database, clock: FakeClock, arun: Arun[Any]) -> None:
    setup = Setup(db, clock)
    head = setup.store(status("20", "@brand same here", parent="10"))
    with FakeHttpServer() as server:
        server.reply(404, json={"error": "Record not found"})

        async def scenario() -> Any:
            async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
                return await setup.service(server.base_url, client).fetch(head)

        result = arun(scenario())
    assert result.outcome is FetchOutcome.FAILED
    assert result.message.startswith("The conversation could not be read on the channel")


def test_marks_deleted_edited_and_messenger_window(db: sqlite_utils.Database, clock: FakeClock) -> None:
    setup = Setup(db, clock)
    head = setup.store(status("10", "@brand my parcel is lost"))
    follow_up = to_new_mention(setup.account.id, parse_status(status("11", "@brand hello?", parent="10", minute=3)))
    setup.mentions.store_batch([follow_up], channel="mastodon", fetched_at=0, plan=SlaPolicy().plan)
    edit = UpstreamEdit("10", "@brand my parcel is lost (order 42)", "2026-01-01T00:09:00Z", json.dumps({"id": "10"}))
    UpstreamRepo(db).apply(setup.account.id, edited=[edit], deleted=["11"], at=900)
    db.conn.execute("UPDATE mentions SET raw = ? WHERE external_id = '11'", (json.dumps({"window_closes_at": 5000}),))
    threads = ThreadService(setup.repo, {}, clock)
    marks = threads.marks(head)
    assert marks[head].edits == ((900, "@brand my parcel is lost"),) and marks[head].deleted_at is None
    (other,) = [m for mid, m in marks.items() if mid != head]
    assert other.deleted_at == 900 and other.window_closes_at == 5000
    assert threads.window_closes_at(head) == 5000
    assert threads.quota(head) is None  # not a YouTube account
    assert setup.mentions.rows_by_id([other.mention_id])[other.mention_id].upstream_deleted_at == 900


def test_a_restarted_sandbox_does_not_mark_old_items_deleted(
    db: sqlite_utils.Database, clock: FakeClock, arun: Arun[Any]
) -> None:
    from console.sync.upstream import UpstreamChecker

    setup = Setup(db, clock)
    setup.store(status("10", "@brand from an earlier session"))  # fetched_at 0
    repo = UpstreamRepo(db)
    assert repo.open_messages(setup.account.id, fetched_since=100) == {}
    assert set(repo.open_messages(setup.account.id)) == {"10"}
    with FakeHttpServer() as server:  # would answer 404 for every status: nothing may be asked

        async def scenario() -> Any:
            async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
                ref = AccountRef(setup.account.id, "mastodon", "brand", server.base_url)
                connector = MastodonConnector(client, account=ref, secrets=setup.secrets, clock=clock)
                checker = UpstreamChecker(
                    repo, {setup.account.id: connector}, clock, fetched_since={setup.account.id: 100}
                )
                return await checker.check(setup.account.id)

        report = arun(scenario())
        assert server.requests == []
    assert (report.checked, report.deleted) == (0, 0)
    assert repo.deleted_upstream(setup.account.id) == set()


def test_removing_an_account_with_its_items_removes_the_cached_context(
    db: sqlite_utils.Database, clock: FakeClock
) -> None:
    from storage.account_admin import AccountAdmin
    from storage.thread_context import ContextMessage

    setup = Setup(db, clock)
    head = setup.store(status("20", "@brand same here", parent="10"))
    setup.repo.replace(head, [ContextMessage("10", "bob", "Bob", "lost parcel", "", 0, "public")], fetched_at=0)
    assert AccountAdmin(db).remove(setup.account.id, delete_items=True, now=0) == 1
    assert db.conn.execute("SELECT count(*) FROM thread_context").fetchone()[0] == 0
    assert db.conn.execute("SELECT count(*) FROM thread_fetches").fetchone()[0] == 0


JUNK = st.text(alphabet=st.sampled_from(list("<>a hrf='\"https://x.y/span class=invisible ellipsis…&#;")), max_size=200)


@given(JUNK)
def test_link_targets_never_crash_on_junk(html: str) -> None:
    from console.channels.link_targets import link_targets

    for text, href in link_targets(html):
        assert text and href.lower().startswith(("http://", "https://"))
