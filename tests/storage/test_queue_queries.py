"""Queue queries: every view, every filter, full-text search, tags, reply states and alert windows."""

from __future__ import annotations

import json
import sqlite3

import pytest
import sqlite_utils

from storage import migrations
from storage.mentions import QueueView
from storage.queue_queries import QueueQuery, QueueQueryRepo, fts_query, search_terms
from storage.rows import MentionKind, MentionStatus, ReplyState
from storage.triage import TriageRepo
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory

DAY = 86_400


@pytest.fixture
def factory(db: sqlite_utils.Database, clock: FakeClock) -> Factory:
    return Factory(db, clock)


@pytest.fixture
def repo(db: sqlite_utils.Database) -> QueueQueryRepo:
    return QueueQueryRepo(db)


def ids(repo: QueueQueryRepo, clock: FakeClock, query: QueueQuery) -> list[int]:
    now = int(clock.now())
    return repo.queue_ids(query, now=now, day_start=now - 3600)


def test_queue_query_open_is_due_order(factory: Factory, repo: QueueQueryRepo, clock: FakeClock) -> None:
    now = clock.now()
    late = factory.add(posted_at=now - 100)
    early = factory.add(posted_at=now - 2000, handle="bo")
    assert ids(repo, clock, QueueQuery()) == [early, late]


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        (QueueView.OPEN, {"fresh", "overdue"}),
        (QueueView.BREACHED, {"overdue"}),
        (QueueView.WAITING, {"waiting"}),
        (QueueView.RESOLVED_TODAY, {"resolved", "community"}),
        (QueueView.ALL, {"fresh", "overdue", "waiting", "resolved", "community", "spam", "old"}),
    ],
)
def test_queue_query_views(
    factory: Factory, repo: QueueQueryRepo, clock: FakeClock, db: sqlite_utils.Database, view: QueueView,
    expected: set[str],
) -> None:  # fmt: skip
    now = int(clock.now())
    triage = TriageRepo(db)
    made = {
        "fresh": factory.add(handle="fresh", posted_at=now - 60),
        "overdue": factory.add(handle="overdue", posted_at=now - 3600),
        "waiting": factory.add(handle="waiting"),
        "resolved": factory.add(handle="resolved"),
        "community": factory.add(handle="community"),
        "spam": factory.add(handle="spam"),
        "old": factory.add(handle="old"),
    }
    for name, status in [("waiting", MentionStatus.WAITING), ("resolved", MentionStatus.RESOLVED),
                         ("community", MentionStatus.COMMUNITY), ("spam", MentionStatus.SPAM)]:  # fmt: skip
        triage.set_status(made[name], status, at=now, actor="agent")
    triage.set_status(made["old"], MentionStatus.RESOLVED, at=now - 2 * 3600, actor="agent")  # before day_start
    names = {v: k for k, v in made.items()}
    assert {names[i] for i in ids(repo, clock, QueueQuery(view=view))} == expected


def test_queue_query_follow_ups_by_promised_time(
    factory: Factory, repo: QueueQueryRepo, clock: FakeClock, db: sqlite_utils.Database
) -> None:
    now = int(clock.now())
    first, second, _none = factory.add(handle="a"), factory.add(handle="b"), factory.add(handle="c")
    db.conn.executemany(
        "INSERT INTO deadlines (mention_id, kind, started_at, due_at, warn_at) VALUES (?, 'follow_up', ?, ?, ?)",
        [(first, now, now + 900, now + 600), (second, now, now + 300, now + 200)],
    )
    assert ids(repo, clock, QueueQuery(view=QueueView.FOLLOW_UPS)) == [second, first]


def test_queue_query_filters(
    factory: Factory, repo: QueueQueryRepo, clock: FakeClock, db: sqlite_utils.Database
) -> None:
    now = int(clock.now())
    public = factory.add(handle="pub")
    direct = factory.add(handle="dm", kind=MentionKind.DIRECT)
    returning = factory.add(handle="pub", text="me again")  # same customer: not a first contact
    triage = TriageRepo(db)
    triage.set_priority(direct, 1, at=now, actor="agent")
    triage.set_tags(public, ("billing", "late-delivery"), at=now, actor="agent")
    triage.set_tags(returning, ("very-late-delivery",), at=now, actor="agent")
    assert ids(repo, clock, QueueQuery(kinds=frozenset({MentionKind.DIRECT}))) == [direct]
    assert ids(repo, clock, QueueQuery(priorities=frozenset({1}))) == [direct]
    assert set(ids(repo, clock, QueueQuery(newcomer=True))) == {public, direct}
    assert ids(repo, clock, QueueQuery(newcomer=False)) == [returning]
    assert ids(repo, clock, QueueQuery(tags=frozenset({"late-delivery"}))) == [public]
    assert ids(repo, clock, QueueQuery(view=QueueView.ALL, tags=frozenset({"late-delivery"}))) == [public]
    all_tagged = QueueQuery(view=QueueView.ALL, tags=frozenset({"billing", "very-late-delivery"}))
    assert ids(repo, clock, all_tagged) == [returning, public]
    assert set(ids(repo, clock, QueueQuery(tags=frozenset({"billing", "very-late-delivery"})))) == {public, returning}
    assert len(ids(repo, clock, QueueQuery(channels=frozenset({"mastodon"})))) == 3
    assert ids(repo, clock, QueueQuery(channels=frozenset({"bluesky"}))) == []
    assert len(ids(repo, clock, QueueQuery(account_ids=frozenset({factory.account.id})))) == 3
    assert ids(repo, clock, QueueQuery(priorities=frozenset({1}), kinds=frozenset({MentionKind.PUBLIC}))) == []


@pytest.mark.parametrize("small_view", [0, 5_000], ids=["full-text index", "row by row"])
def test_queue_query_search_finds_text_customer_tags_and_follow_ups(
    factory: Factory, clock: FakeClock, db: sqlite_utils.Database, small_view: int
) -> None:
    repo = QueueQueryRepo(db, small_view=small_view)
    parcel = factory.add(text="Where is my parcel?", handle="ana", name="Ana Lima")
    card = factory.add(text="Card declined", handle="bo", name="Bo Chen")
    head_ext = factory.mentions.rows_by_id([card])[card].external_id
    factory.store([factory.new(text="Still no refund", handle="bo", name="Bo Chen", parent=head_ext)])
    TriageRepo(db).set_tags(parcel, ("shipping",), at=int(clock.now()), actor="agent")
    assert ids(repo, clock, QueueQuery(search="parcel")) == [parcel]
    assert ids(repo, clock, QueueQuery(search="parc")) == [parcel]  # prefix while typing
    assert ids(repo, clock, QueueQuery(search="Lima")) == [parcel]
    assert ids(repo, clock, QueueQuery(search="shipping")) == [parcel]
    assert ids(repo, clock, QueueQuery(search="refund")) == [card]  # a follow-up finds its thread
    assert ids(repo, clock, QueueQuery(search="chen refund ")) == [card]
    assert ids(repo, clock, QueueQuery(search="parcel refund")) == []


@pytest.mark.parametrize("text", ['"', "NOT", "a:b", "*", "(", "tags : x", "AND OR", "é"])
def test_queue_query_search_input_is_never_syntax(repo: QueueQueryRepo, clock: FakeClock, text: str) -> None:
    ids(repo, clock, QueueQuery(search=text))  # no error


def test_fts_query_quotes_words() -> None:
    assert fts_query('refund "now') == '"refund" "now"*'
    assert fts_query("refund ") == '"refund"'
    assert fts_query("  ") is None
    assert search_terms("Où est-il?") == ["où", "est", "il"]


def test_queue_query_paging_and_capped_count(factory: Factory, repo: QueueQueryRepo, clock: FakeClock) -> None:
    made = factory.many(30)
    now = int(clock.now())
    page = repo.queue_ids(QueueQuery(), now=now, day_start=0, limit=10, offset=10)
    assert page == ids(repo, clock, QueueQuery())[10:20]
    assert set(made) == set(ids(repo, clock, QueueQuery()))
    assert repo.count(QueueQuery(), now=now, day_start=0) == 30
    assert repo.count(QueueQuery(), now=now, day_start=0, cap=12) == 12


def test_queue_query_reply_states_shows_latest_unsent(
    factory: Factory, repo: QueueQueryRepo, clock: FakeClock, db: sqlite_utils.Database
) -> None:
    a, b, c = factory.add(handle="a"), factory.add(handle="b"), factory.add(handle="c")
    now = int(clock.now())
    db.conn.executemany(
        "INSERT INTO replies (mention_id, text, idempotency_key, state, created_at) VALUES (?, 'x', ?, ?, ?)",
        [(a, "k1", "sent", now), (a, "k2", "failed", now), (b, "k3", "sent", now), (c, "k4", "draft", now),
         (c, "k5", "queued", now)],
    )  # fmt: skip
    assert repo.reply_states([a, b, c]) == {a: ReplyState.FAILED, c: ReplyState.QUEUED}


def test_queue_query_known_tags_by_use(
    factory: Factory, repo: QueueQueryRepo, clock: FakeClock, db: sqlite_utils.Database
) -> None:
    triage = TriageRepo(db)
    a, b = factory.add(handle="a"), factory.add(handle="b")
    triage.set_tags(a, ("refund", "billing"), at=0, actor="x")
    triage.set_tags(b, ("refund",), at=0, actor="x")
    assert repo.known_tags() == ["refund", "billing"]
    assert repo.known_tags("bi") == ["billing"]
    triage.set_tags(a, (), at=0, actor="x")
    assert repo.known_tags() == ["refund"]
    assert repo.known_tags("%") == []


def test_queue_query_other_conversations_and_survey(
    factory: Factory, repo: QueueQueryRepo, clock: FakeClock, db: sqlite_utils.Database
) -> None:
    now = int(clock.now())
    old = factory.add(handle="ana", text="first", posted_at=now - 500)
    new = factory.add(handle="ana", text="second", posted_at=now - 100)
    factory.add(handle="bo")
    assert [r[0] for r in repo.other_conversations(new)] == [old]
    assert repo.last_survey_answer(new) is None
    customer = factory.mentions.rows_by_id([old])[old].customer_id
    db.conn.execute(
        "INSERT INTO surveys (mention_id, customer_id, sent_at, question_version, answer_text, score, parsed_at) "
        "VALUES (?, ?, ?, 'v1', '2 thanks', 2, ?)",
        (old, customer, now - 400, now - 300),
    )
    assert repo.last_survey_answer(new) == (now - 300, 2, "2 thanks")


def test_queue_query_alert_windows(factory: Factory, repo: QueueQueryRepo, clock: FakeClock) -> None:
    now = int(clock.now())
    item = factory.add(posted_at=now)  # first response due in 30 min, warning at 22:30
    row = factory.mentions.rows_by_id([item])[item]
    assert row.warn_at is not None and row.due_at is not None
    assert repo.near_breach_count(now) == 0
    assert [a.mention_id for a in repo.entered_warning(now, row.warn_at)] == [item]
    assert repo.entered_warning(row.warn_at, row.warn_at + 10) == []
    assert repo.near_breach_count(row.warn_at) == 1
    assert [a.mention_id for a in repo.entered_breach(row.warn_at, row.due_at)] == [item]
    assert repo.near_breach_count(row.due_at) == 0


def test_triage_repo_writes_event_with_change(factory: Factory, db: sqlite_utils.Database) -> None:
    item = factory.add()
    TriageRepo(db).set_status(item, MentionStatus.WAITING, at=5, actor="Sam")
    at, actor, kind, data = db.conn.execute(
        "SELECT at, actor, kind, data FROM events WHERE mention_id = ? ORDER BY id DESC LIMIT 1", (item,)
    ).fetchone()
    assert (at, actor, kind, json.loads(data)) == (5, "Sam", "status_changed", {"from": "new", "to": "waiting"})


@pytest.mark.parametrize("small_view", [0, 5_000], ids=["full-text index", "row by row"])
@pytest.mark.parametrize(
    ("search", "found"),
    [("cafe", True), ("CAFÉ", True), ("caf", True), ("caf ", False), ("late", True), ("delivery_late", True),
     ("naïve", True), ("x", False)],
)  # fmt: skip
def test_queue_query_search_paths_agree(
    factory: Factory, clock: FakeClock, db: sqlite_utils.Database, small_view: int, search: str, found: bool
) -> None:
    item = factory.add(text="Le café était froid, naive question")
    TriageRepo(db).set_tags(item, ("late-delivery",), at=0, actor="x")
    repo = QueueQueryRepo(db, small_view=small_view)
    assert ids(repo, clock, QueueQuery(search=search)) == ([item] if found else [])


def test_queue_query_search_in_all_pages_newest_first(
    factory: Factory, repo: QueueQueryRepo, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("storage.queue_queries.HIT_WINDOW", 2)  # force the window to widen
    made = factory.many(30)
    now = int(clock.now())
    query = QueueQuery(view=QueueView.ALL, search="number")
    everything = repo.queue_ids(query, now=now, day_start=0)
    assert everything == sorted(made, reverse=True)
    assert repo.queue_ids(query, now=now, day_start=0, limit=5, offset=10) == everything[10:15]
    assert repo.queue_ids(QueueQuery(view=QueueView.ALL, search="number 7"), now=now, day_start=0, limit=5) == [made[7]]
    assert repo.count(query, now=now, day_start=0) == 30


def test_migration_3_seeds_the_tag_vocabulary() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)  # the migrations manage their transactions
    try:
        before = [m for m in migrations.MIGRATIONS if m.number < 3]
        migrations.apply(conn, before)
        conn.execute("INSERT INTO accounts (id, kind, handle, base_url, created_at) VALUES (1, 'x', 'h', 'u', 0)")
        conn.executemany(
            "INSERT INTO mentions (account_id, external_id, thread_key, author_handle, text, posted_at, fetched_at, "
            "last_message_at, tags) VALUES (1, ?, ?, 'a', 't', 0, 0, 0, ?)",
            [("1", "1", "billing,refund"), ("2", "2", "refund"), ("3", "3", "")],
        )
        migrations.apply(conn, [m for m in migrations.MIGRATIONS if m.number <= 3])
        rows = conn.execute("SELECT name, use_count FROM tags ORDER BY name").fetchall()
        assert rows == [("billing", 1), ("refund", 2)]
    finally:
        conn.close()
