"""The applier: a colleague's changes land in the local copy through the repositories, once, in server order.

Two (or three) real SQLite copies on files; the team log between them is a list that numbers events the way the
server does (a seq each, a uid kept once). Replication against a real PostgreSQL is test_replication.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlite_utils

import console.team.applier as applier_module
from console.sla.engine import SlaEngine
from console.team.applier import Applier, ApplyReport, Response, follow_through
from console.team.keys import account_key, item_key, local_event_uid, mention_uid, parse_account_key, split_item_key
from console.team.replicator import CONVERT_SLICE, PushEvent, push_event, push_mention
from console.team.replicator import _converted as converted_page
from storage.accounts import AccountRepo
from storage.db import close_database, open_database
from storage.deadlines import DeadlineRepo
from storage.events import EventRepo
from storage.mentions import MentionRepo
from storage.replies import ReplyRepo
from storage.rows import DeadlineKind, MentionKind, MentionStatus, NewMention
from storage.seen_replies import SeenReplyRepo
from storage.settings import SettingsRepo
from storage.team.events import TeamEvent
from storage.team_local import SharedEvent, TeamLocalRepo
from storage.triage import TriageRepo
from tests.fakes.clock import FakeClock

T0 = 1_772_445_600
BASE = "https://social.example"
ACCOUNT = account_key("mastodon", BASE, "care")


@dataclass
class Copy:
    """One member's machine: its SQLite file, repositories, SLA engine and applier."""

    name: str
    member_uuid: str
    path: Path
    db: sqlite_utils.Database
    clock: FakeClock
    mentions: MentionRepo
    triage: TriageRepo
    replies: ReplyRepo
    local: TeamLocalRepo
    engine: SlaEngine
    applier: Applier
    account_id: int

    def post(self, ext: str, at: int, *, parent: str | None = None, text: str = "help") -> int:
        """A customer message fetched by this copy; returns its mention id."""
        item = NewMention(
            account_id=self.account_id, external_id=ext, author_external_id="ana", author_handle="ana",
            author_name="Ana", text=text, url=f"{BASE}/@ana/{ext}", posted_at=at, kind=MentionKind.PUBLIC,
            visibility="public", parent_external_id=parent, raw_json="{}",
        )  # fmt: skip
        result = self.mentions.store_batch(
            [item], channel="mastodon", fetched_at=int(self.clock.now()), plan=self.engine.planner("mastodon")
        )
        if result.follow_up_heads:
            self.engine.recompute(result.follow_up_heads)
        return self.mention_id(ext)

    def mention_id(self, ext: str) -> int:
        found = self.local.mention_ids([item_key(ACCOUNT, ext)])
        return found[item_key(ACCOUNT, ext)]

    def has(self, ext: str) -> bool:
        return item_key(ACCOUNT, ext) in self.local.mention_ids([item_key(ACCOUNT, ext)])

    def set_status(self, mention_id: int, status: MentionStatus, at: int) -> None:
        state = self.triage.state(mention_id)
        assert state is not None
        self.triage.set_status(mention_id, status, at=at, actor=self.name)
        self.engine.on_status_change(mention_id, state.status, status, at)

    def status(self, ext: str) -> MentionStatus:
        state = self.triage.state(self.mention_id(ext))
        assert state is not None
        return state.status

    def send_reply(self, mention_id: int, text: str, at: int, *, key: str | None = None) -> str:
        key = key or str(uuid.uuid4())
        row = self.replies.enqueue(
            mention_id=mention_id, target_id=mention_id, text=text, visibility="public", purpose="reply",
            idempotency_key=key, now=at, actor=self.name,
        )  # fmt: skip
        self.replies.mark_sending(row.id, now=at)
        self.replies.mark_sent(row.id, external_id=f"r-{key[:8]}", url=f"{BASE}/r/{key[:8]}", at=at)
        self.engine.reply_sent(mention_id, at, purpose="reply")
        return key

    def outgoing(self) -> tuple[list[PushEvent], int, int]:
        """Own messages and changes not pushed yet (mentions first), and the watermarks they reach."""
        marks = self.local.watermarks()
        mentions = self.local.outgoing_mentions(marks.pushed_mention_id, limit=100_000)
        held = self.local.applied_seqs(mention_uid(m.item_key) for m in mentions)
        events = self.local.outgoing_events(marks.pushed_event_id, limit=100_000)
        out = [push_mention(m, member=self.name) for m in mentions if mention_uid(m.item_key) not in held]
        out += [push_event(e, member=self.name, member_uuid=self.member_uuid) for e in events]
        last_mention = mentions[-1].mention_id if mentions else marks.pushed_mention_id
        last_event = events[-1].event_id if events else marks.pushed_event_id
        return out, last_event, last_mention

    def close(self) -> None:
        self.applier.close()
        close_database(self.db)


@dataclass
class Log:
    """The team log as the server keeps it: a seq per event, each uid once."""

    events: list[SharedEvent] = field(default_factory=list)

    def append(self, pushed: list[PushEvent]) -> int:
        known = {e.uid for e in self.events}
        added = 0
        for p in pushed:
            if p.uid in known:
                continue
            known.add(p.uid)
            self.events.append(SharedEvent(len(self.events) + 1, p.uid, p.author, p.at, p.kind, p.item_key, p.data))
            added += 1
        return added

    def since(self, seq: int) -> list[SharedEvent]:
        return [e for e in self.events if e.seq > seq]


def push(copy: Copy, log: Log) -> int:
    """What the replicator's push does, against the list: append, then hold the uids and move the watermarks."""
    pushed, last_event, last_mention = copy.outgoing()
    added = log.append(pushed)
    copy.local.record_pushed(
        [(p.uid, p.kind, p.item_key) for p in pushed], event_id=last_event, mention_id=last_mention
    )
    return added


def pull(copy: Copy, log: Log) -> ApplyReport:
    async def run() -> ApplyReport:
        report = await copy.applier.apply(log.since(copy.local.watermarks().pulled_seq))
        await follow_through(report, copy.engine, copy.local)
        return report

    return asyncio.run(run())


def make_copy(folder: Path, name: str, clock: FakeClock) -> Copy:
    path = folder / f"{name}.sqlite3"
    db = open_database(path)
    account = AccountRepo(db).add(kind="mastodon", handle="@care", base_url=BASE + "/", now=T0)
    mentions = MentionRepo(db)
    engine = SlaEngine(DeadlineRepo(db, mentions), SettingsRepo(db), clock)
    member_uuid = str(uuid.uuid4())
    local = TeamLocalRepo(db)
    applier = Applier(mentions, path, member_uuid=member_uuid, plan_for=engine.planner, now=clock.now)
    return Copy(
        name, member_uuid, path, db, clock, mentions, TriageRepo(db), ReplyRepo(db), local, engine, applier,
        account.id,
    )  # fmt: skip


@pytest.fixture
def copies(tmp_path: Path) -> Iterator[tuple[Copy, Copy, Copy]]:
    clock = FakeClock(T0 + 600)
    made = tuple(make_copy(tmp_path, name, clock) for name in ("Sam", "Kim", "Lee"))
    yield made  # type: ignore[misc]
    for copy in made:
        copy.close()


def snapshot(copy: Copy) -> dict[str, tuple[str, int, str, int]]:
    """Every stored message by item key: (status, priority, tags, replies sent)."""
    rows = copy.db.conn.execute(
        "SELECT m.external_id, m.status, m.priority, m.tags, "
        "(SELECT count(*) FROM replies r WHERE r.mention_id = m.id AND r.state = 'sent') FROM mentions m"
    ).fetchall()
    return {item_key(ACCOUNT, str(r[0])): (str(r[1]), int(r[2]), str(r[3]), int(r[4])) for r in rows}


def test_a_colleague_gets_the_items_status_priority_tags_and_reply(copies: tuple[Copy, Copy, Copy]) -> None:
    sam, kim, _ = copies
    head = sam.post("100", T0)
    sam.post("101", T0 + 60, parent="100")
    sam.set_status(head, MentionStatus.OPEN, T0 + 120)
    sam.triage.set_priority(head, 1, at=T0 + 130, actor="Sam")
    sam.triage.set_tags(head, ("billing", "refund"), at=T0 + 140, actor="Sam")
    key = sam.send_reply(head, "We are on it", T0 + 200)
    log = Log()
    push(sam, log)

    report = pull(kim, log)

    assert snapshot(kim) == snapshot(sam)
    kim_head = kim.mention_id("100")
    assert report.new_mentions == (kim_head,)
    assert kim_head in report.changed
    assert [r.idempotency_key for r in kim.replies.for_mention(kim_head)] == [key]
    first = [d for d in kim.mentions.deadlines(kim_head) if d.kind is DeadlineKind.FIRST_RESPONSE]
    assert first and first[0].met_at == T0 + 200  # the SLA engine heard of Sam's reply
    assert kim.local.watermarks().pulled_seq == len(log.events)
    assert kim.local.digest() == sam.local.digest() != TeamLocalRepo(open_database(None)).digest()


def test_applying_the_same_page_twice_changes_nothing(copies: tuple[Copy, Copy, Copy]) -> None:
    sam, kim, _ = copies
    head = sam.post("100", T0)
    sam.set_status(head, MentionStatus.WAITING, T0 + 60)
    sam.send_reply(head, "Could you DM us?", T0 + 50)
    log = Log()
    push(sam, log)
    pull(kim, log)
    events_before = EventRepo(kim.db).for_mention(kim.mention_id("100"))
    before = snapshot(kim)

    async def apply_again() -> ApplyReport:
        report = await kim.applier.apply(log.events)
        await follow_through(report, kim.engine, kim.local)
        return report

    again = asyncio.run(apply_again())

    assert again.empty and again.skipped == len(log.events) and again.applied == 0
    assert snapshot(kim) == before
    assert EventRepo(kim.db).for_mention(kim.mention_id("100")) == events_before


def test_applied_changes_are_never_pushed_back(copies: tuple[Copy, Copy, Copy]) -> None:
    sam, kim, _ = copies
    head = sam.post("100", T0)
    sam.set_status(head, MentionStatus.OPEN, T0 + 60)
    sam.send_reply(head, "Hi", T0 + 70)
    log = Log()
    push(sam, log)
    pull(kim, log)

    pushed, _, _ = kim.outgoing()

    assert pushed == []
    assert kim.local.to_push() == 0


def test_our_own_events_coming_back_gain_their_seq_and_are_not_applied_again(copies: tuple[Copy, Copy, Copy]) -> None:
    sam, _, _ = copies
    head = sam.post("100", T0)
    sam.set_status(head, MentionStatus.OPEN, T0 + 60)
    log = Log()
    push(sam, log)
    own = local_event_uid(sam.member_uuid, sam.local.outgoing_events(0)[0].event_id)
    assert sam.local.applied_seqs([own]) == {own: None}

    report = pull(sam, log)

    assert report.skipped == len(log.events) and report.applied == 0
    assert sam.local.applied_seqs([own]) == {own: 2}


def test_events_about_an_item_not_here_yet_wait_for_it(copies: tuple[Copy, Copy, Copy]) -> None:
    sam, kim, _ = copies
    head = sam.post("100", T0)
    sam.set_status(head, MentionStatus.RESOLVED, T0 + 60)
    pushed, _, _ = sam.outgoing()
    mention = [p for p in pushed if p.kind == "mention"]
    rest = [p for p in pushed if p.kind != "mention"]
    log = Log()
    log.append(rest)  # the status change reaches the log first (another member pushed it early)

    first = pull(kim, log)
    assert first.parked == 1 and not kim.has("100")
    assert kim.local.parked_count() == 1

    log.append(mention)
    pull(kim, log)

    assert kim.status("100") is MentionStatus.RESOLVED
    assert kim.local.parked_count() == 0
    assert kim.local.applied_count() == len(log.events)


def test_concurrent_offline_changes_converge_in_the_servers_order_and_are_recorded(
    copies: tuple[Copy, Copy, Copy],
) -> None:
    sam, kim, lee = copies
    sam.post("100", T0)
    log = Log()
    push(sam, log)
    pull(kim, log)
    pull(lee, log)
    # Both offline: Sam resolves, Kim puts it on waiting; Sam's reaches the team first.
    sam.set_status(sam.mention_id("100"), MentionStatus.RESOLVED, T0 + 100)
    kim.set_status(kim.mention_id("100"), MentionStatus.WAITING, T0 + 90)
    push(sam, log)
    pull(kim, log)  # Kim's own change is not pushed yet: it will come after Sam's, so it stands here
    assert kim.status("100") is MentionStatus.WAITING
    push(kim, log)
    pull(kim, log)
    pull(sam, log)
    pull(lee, log)

    assert sam.status("100") is kim.status("100") is lee.status("100") is MentionStatus.WAITING
    kim_conflicts = kim.local.conflicts()
    sam_conflicts = sam.local.conflicts()
    assert [(c.kind, c.winner) for c in kim_conflicts] == [("status_changed", "ours")]
    assert kim_conflicts[0].theirs["to"] == "resolved" and kim_conflicts[0].ours["to"] == "waiting"
    assert [(c.kind, c.winner) for c in sam_conflicts] == [("status_changed", "theirs")]
    assert lee.local.conflicts() == []  # Lee changed nothing: nothing of Lee's was overridden
    assert sam.local.conflict_count() == 1


def test_a_colleagues_reply_we_already_have_is_not_stored_twice(copies: tuple[Copy, Copy, Copy]) -> None:
    sam, kim, _ = copies
    sam.post("100", T0)
    log = Log()
    push(sam, log)
    pull(kim, log)
    key = sam.send_reply(sam.mention_id("100"), "Hi", T0 + 70)
    kim.send_reply(kim.mention_id("100"), "Hi", T0 + 70, key=key)  # the same reply (one key) recorded here too
    push(sam, log)

    pull(kim, log)

    assert len(kim.replies.for_mention(kim.mention_id("100"))) == 1


def test_other_kinds_are_kept_in_the_item_history(copies: tuple[Copy, Copy, Copy]) -> None:
    sam, kim, _ = copies
    sam.post("100", T0)
    log = Log()
    push(sam, log)
    key = item_key(ACCOUNT, "100")
    log.append(
        [
            PushEvent(str(uuid.uuid4()), "Sam", T0 + 5, "claimed", key, {"holder": "Sam"}),
            PushEvent(str(uuid.uuid4()), "Sam", T0 + 6, "note_added", key, {"text": "VIP customer"}),
            PushEvent(str(uuid.uuid4()), "Sam", T0 + 7, "shift_started", None, {"agent": "Sam", "notes": ""}),
        ]
    )

    pull(kim, log)

    kinds = [(e.kind, e.actor) for e in EventRepo(kim.db).for_mention(kim.mention_id("100"))]
    assert ("claimed", "Sam") in kinds and ("note_added", "Sam") in kinds
    assert EventRepo(kim.db).count("shift_started") == 1
    assert kim.local.applied_count() == len(log.events)


def test_a_hand_over_shows_in_the_history_of_every_item_it_names(copies: tuple[Copy, Copy, Copy]) -> None:
    sam, kim, _ = copies
    sam.post("100", T0)
    sam.post("101", T0 + 1)
    log = Log()
    push(sam, log)
    keys = [item_key(ACCOUNT, "100"), item_key(ACCOUNT, "101"), item_key(ACCOUNT, "999")]  # 999: never received
    data = {"shift_uid": "s1", "to": "Kim", "note": "call back Ana", "items": keys, "follow_ups": []}
    log.append([PushEvent(str(uuid.uuid4()), "Sam", T0 + 9, "handed_over", None, data)])

    pull(kim, log)
    pull(kim, log)  # a second pull of the same page writes nothing more

    for ext in ("100", "101"):
        history = [(e.kind, e.actor) for e in EventRepo(kim.db).for_mention(kim.mention_id(ext))]
        assert history.count(("handed_over", "Sam")) == 1
    assert EventRepo(kim.db).count("handed_over") == 3  # two items' histories and the shift's own record
    assert kim.local.applied_count() == len(log.events)


def test_a_mention_of_an_account_this_copy_lacks_creates_it_without_a_token(copies: tuple[Copy, Copy, Copy]) -> None:
    _, kim, _ = copies
    other = account_key("discourse", "https://forum.example", "support")
    log = Log()
    key = item_key(other, "t-9")
    log.append(
        [
            PushEvent(
                mention_uid(key), "Sam", T0, "mention", key,
                {"account_key": other, "external_id": "t-9", "thread_key": "t-9", "parent_external_id": None,
                 "head_external_id": None, "author_id": "zed", "author_handle": "zed", "author_name": "Zed",
                 "text": "forum question", "url": "", "posted_at": T0, "kind": "public", "visibility": "public"},
            )
        ]
    )  # fmt: skip

    report = pull(kim, log)

    assert len(report.new_mentions) == 1
    accounts = {(a.kind, a.base_url, a.handle) for a in AccountRepo(kim.db).list()}
    assert ("discourse", "https://forum.example", "support") in accounts
    assert kim.local.mention_ids([key])


def test_ten_thousand_events_catch_up_in_chunks(copies: tuple[Copy, Copy, Copy]) -> None:
    _, kim, _ = copies
    log = Log()
    batch = [
        PushEvent(
            mention_uid(item_key(ACCOUNT, f"x{i}")), "Sam", T0 + i, "mention", item_key(ACCOUNT, f"x{i}"),
            {"account_key": ACCOUNT, "external_id": f"x{i}", "thread_key": f"x{i}", "parent_external_id": None,
             "head_external_id": None, "author_id": f"c{i % 50}", "author_handle": f"c{i % 50}", "author_name": "",
             "text": f"message {i}", "url": "", "posted_at": T0 + i, "kind": "public", "visibility": "public"},
        )
        for i in range(5000)
    ]  # fmt: skip
    batch += [
        PushEvent(str(uuid.uuid4()), "Sam", T0 + 9000 + i, "status_changed", item_key(ACCOUNT, f"x{i}"),
                  {"from": "new", "to": "open"})
        for i in range(5000)
    ]  # fmt: skip
    log.append(batch)

    report = pull(kim, log)

    assert report.applied == 10_000 and len(report.new_mentions) == 5000
    assert kim.mentions.count() == 5000
    assert kim.db.conn.execute("SELECT count(*) FROM mentions WHERE status = 'open'").fetchone()[0] == 5000
    assert kim.local.watermarks().pulled_seq == 10_000
    assert kim.local.applied_count() == 10_000


def test_the_brands_reply_seen_on_the_channel_reaches_a_colleague_once(copies: tuple[Copy, Copy, Copy]) -> None:
    sam, kim, _ = copies
    head = sam.post("100", T0)
    log = Log()
    push(sam, log)
    pull(kim, log)
    seen = SeenReplyRepo(sam.db).record(
        account_id=sam.account_id, mention_id=head, external_id="brand-1", url=f"{BASE}/@care/brand-1",
        text="Answered from the phone", posted_at=T0 + 300, visibility="public", now=T0 + 400, actor="on Mastodon",
    )  # fmt: skip
    assert seen is not None
    sam.engine.reply_sent(head, T0 + 300, purpose="reply")
    push(sam, log)
    (pushed,) = [e for e in log.events if e.kind == "reply_seen"]
    assert "reply_id" not in pushed.data and "reply_key" not in pushed.data  # local names stay local

    report = pull(kim, log)

    kim_head = kim.mention_id("100")
    replies = kim.replies.for_mention(kim_head)
    assert [(r.external_id, r.state.value) for r in replies] == [("brand-1", "sent")]
    assert [r.mention_id for r in report.responses] == [kim_head]
    first = [d for d in kim.mentions.deadlines(kim_head) if d.kind is DeadlineKind.FIRST_RESPONSE]
    assert first[0].met_at == T0 + 300
    assert kim.outgoing()[0] == []  # the reply stored here for Sam's find is not pushed back


def test_two_members_answering_the_same_message_offline_is_recorded_on_both_sides(
    copies: tuple[Copy, Copy, Copy],
) -> None:
    sam, kim, _ = copies
    sam.post("100", T0)
    log = Log()
    push(sam, log)
    pull(kim, log)
    sam.send_reply(sam.mention_id("100"), "Sam's answer", T0 + 100)
    kim.send_reply(kim.mention_id("100"), "Kim's answer", T0 + 120)
    push(sam, log)
    push(kim, log)

    pull(sam, log)
    pull(kim, log)

    for copy, other in ((sam, "Kim"), (kim, "Sam")):
        (conflict,) = copy.local.conflicts()
        assert conflict.kind == "reply_sent" and conflict.winner == "server" and other in conflict.reason
        assert len(copy.replies.for_mention(copy.mention_id("100"))) == 2
    # A later answer to a later customer message is a conversation, not a conflict.
    sam.post("101", T0 + 200, parent="100")
    push(sam, log)
    pull(kim, log)
    kim.send_reply(kim.mention_id("100"), "Kim again", T0 + 300)
    push(kim, log)
    pull(sam, log)
    assert len(sam.local.conflicts()) == 1


def test_a_follow_up_to_a_message_this_copy_lacks_joins_the_thread_its_sender_named(
    copies: tuple[Copy, Copy, Copy],
) -> None:
    sam, kim, _ = copies
    sam.post("100", T0)
    sam.post("101", T0 + 10, parent="100")
    sam.post("102", T0 + 20, parent="101")
    pushed, _, _ = sam.outgoing()
    log = Log()
    log.append([p for p in pushed if p.item_key != item_key(ACCOUNT, "101")])  # 101 never reaches Kim

    report = pull(kim, log)

    head = kim.mention_id("100")
    assert report.new_mentions == (head,)
    assert [m.external_id for m in kim.mentions.thread(head)] == ["100", "102"]


def test_keys_are_the_same_on_every_machine() -> None:
    key = account_key("discourse", "https://forum.example:8443/", "@support")
    assert key == "discourse:https://forum.example:8443:support"
    parts = parse_account_key(key)
    assert (parts.kind, parts.base_url, parts.handle) == ("discourse", "https://forum.example:8443", "support")
    assert split_item_key(item_key(key, "t/9")) == (key, "t/9")
    member = str(uuid.uuid4())
    assert local_event_uid(member, 7) == local_event_uid(uuid.UUID(member), 7) != local_event_uid(member, 8)
    assert mention_uid(item_key(key, "1")) == mention_uid(item_key(key, "1")) != mention_uid(item_key(key, "2"))
    with pytest.raises(ValueError, match="not an account key"):
        parse_account_key("mastodon")


def test_an_in_memory_copy_applies_inline(copies: tuple[Copy, Copy, Copy]) -> None:
    sam, _, _ = copies
    head = sam.post("100", T0)
    sam.set_status(head, MentionStatus.OPEN, T0 + 60)
    log = Log()
    push(sam, log)
    db = open_database(None)
    AccountRepo(db).add(kind="mastodon", handle="care", base_url=BASE, now=T0)
    mentions = MentionRepo(db)
    engine = SlaEngine(DeadlineRepo(db, mentions), SettingsRepo(db), sam.clock)
    applier = Applier(mentions, None, member_uuid=str(uuid.uuid4()), plan_for=engine.planner, now=sam.clock.now)
    try:
        report = asyncio.run(applier.apply(log.events))
        assert len(report.new_mentions) == 1
        state = TriageRepo(db).state(report.new_mentions[0])
        assert state is not None and state.status is MentionStatus.OPEN
    finally:
        applier.close()
        close_database(db)


def _see(copy: Copy, head: int, external_id: str, at: int) -> bool:
    """This copy's sync finds the brand's post ``external_id`` on the channel; True when it stored it."""
    found = SeenReplyRepo(copy.db).record(
        account_id=copy.account_id, mention_id=head, external_id=external_id, url=f"{BASE}/r/{external_id}",
        text="found on the channel", posted_at=at, visibility="public", now=at + 5, actor="on Mastodon",
    )  # fmt: skip
    return found is not None


def sent_rows(copy: Copy, ext: str) -> list[tuple[str, str, str]]:
    rows = copy.db.conn.execute(
        "SELECT external_id, idempotency_key, text FROM replies WHERE mention_id = ? AND state = 'sent' ORDER BY id",
        (copy.mention_id(ext),),
    ).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def test_a_colleagues_reply_seen_on_the_channel_first_stays_one_sent_reply(copies: tuple[Copy, Copy, Copy]) -> None:
    sam, kim, _ = copies
    sam.post("100", T0)
    log = Log()
    push(sam, log)
    pull(kim, log)
    key = sam.send_reply(sam.mention_id("100"), "Sam's answer", T0 + 70)
    assert _see(kim, kim.mention_id("100"), f"r-{key[:8]}", T0 + 70)  # Kim's sync finds Sam's post first
    push(sam, log)

    pull(kim, log)

    assert sent_rows(kim, "100") == [(f"r-{key[:8]}", key, "Sam's answer")]  # the colleague's reply, once


def test_a_post_seen_after_the_colleagues_reply_arrived_records_nothing_new(copies: tuple[Copy, Copy, Copy]) -> None:
    sam, kim, lee = copies
    sam.post("100", T0)
    log = Log()
    push(sam, log)
    pull(kim, log)
    pull(lee, log)
    key = sam.send_reply(sam.mention_id("100"), "Sam's answer", T0 + 70)
    post = f"r-{key[:8]}"
    assert _see(lee, lee.mention_id("100"), post, T0 + 70)  # Lee's sync finds it and pushes a reply_seen
    push(sam, log)
    push(lee, log)

    pull(kim, log)  # reply_sent, then Lee's reply_seen of the same post
    assert not _see(kim, kim.mention_id("100"), post, T0 + 70)  # Kim's own sync finds it later

    assert sent_rows(kim, "100") == [(post, key, "Sam's answer")]
    pull(lee, log)
    assert sent_rows(lee, "100") == [(post, key, "Sam's answer")]


async def _turns_while(work: Callable[[], Awaitable[object]]) -> int:
    """How many times another task got the loop while ``work`` ran (0: ``work`` held the loop throughout)."""
    done = False
    turns = 0

    async def ticker() -> None:
        nonlocal turns
        while not done:
            await asyncio.sleep(0)
            turns += 1

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0)  # the ticker is running before the work starts
    start = turns
    await work()
    done = True
    await tick
    return turns - start


def test_follow_through_hands_the_loop_back_once_its_time_budget_is_spent(
    copies: tuple[Copy, Copy, Copy], monkeypatch: pytest.MonkeyPatch
) -> None:
    sam, kim, _ = copies
    for n in range(12):
        sam.post(f"{100 + n}", T0 + n)
    log = Log()
    push(sam, log)
    pull(kim, log)
    heads = [kim.mention_id(f"{100 + n}") for n in range(12)]
    report = ApplyReport(responses=tuple(Response(h, T0 + 60, "reply", None, str(uuid.uuid4())) for h in heads))
    monkeypatch.setattr(applier_module, "FOLLOW_BUDGET_S", 0.0)  # every item spends the whole budget

    turns = asyncio.run(_turns_while(lambda: follow_through(report, kim.engine, kim.local)))

    assert turns >= len(heads)  # the loop came back after every item, not only every FOLLOW_SLICE
    assert all(d.met_at == T0 + 60 for h in heads for d in kim.mentions.deadlines(h)
               if d.kind is DeadlineKind.FIRST_RESPONSE)  # fmt: skip


def test_a_pulled_page_is_converted_with_the_loop_handed_back_between_slices() -> None:
    page = [
        TeamEvent(uuid.uuid4(), "Sam", T0, "note", item_key(ACCOUNT, str(n)), {"text": "x"}, seq=n + 1)
        for n in range(CONVERT_SLICE * 3)
    ]

    async def scenario() -> tuple[int, list[SharedEvent]]:
        out: list[SharedEvent] = []

        async def work() -> None:
            out.extend(await converted_page(page))

        return await _turns_while(work), out

    turns, out = asyncio.run(scenario())

    assert turns >= 2  # three slices, the loop handed back between them
    assert [e.seq for e in out] == list(range(1, len(page) + 1)) and out[0].uid == str(page[0].uid)
