"""MentionRepo: batched dedupe, threads and follow-ups, customers, deadlines, FTS, queue order, breaches."""

from __future__ import annotations

import pytest
import sqlite_utils

from console.sla.bands import SlaPolicy
from storage.accounts import AccountRepo
from storage.errors import StorageError
from storage.events import EventRepo
from storage.mentions import MentionRepo, QueueView
from storage.rows import DeadlineKind, MentionKind, MentionStatus, NewMention

T0 = 1_767_225_600
PLAN = SlaPolicy().plan


def item(ext: str, *, author: str = "ana", posted: int = T0, parent: str | None = None, text: str = "hi",
         account_id: int = 1, kind: MentionKind = MentionKind.PUBLIC) -> NewMention:  # fmt: skip
    return NewMention(
        account_id=account_id, external_id=ext, author_external_id=f"id-{author}", author_handle=author,
        author_name=author.title(), text=text, url=f"https://x.example/{ext}", posted_at=posted, kind=kind,
        visibility="direct" if kind is MentionKind.DIRECT else "public", parent_external_id=parent, raw_json="{}",
    )  # fmt: skip


def setup(db: sqlite_utils.Database) -> MentionRepo:
    AccountRepo(db).add(kind="mastodon", handle="care", base_url="http://sandbox", now=T0)
    return MentionRepo(db)


def store(repo: MentionRepo, items: list[NewMention], fetched: int = T0 + 5):  # type: ignore[no-untyped-def]
    return repo.store_batch(items, channel="mastodon", fetched_at=fetched, plan=PLAN)


def test_store_batch_dedupes_within_and_across_batches(db: sqlite_utils.Database) -> None:
    repo = setup(db)
    first = store(repo, [item("1"), item("2"), item("1")])
    assert len(first.inserted_ids) == 2 and first.duplicates == 1
    again = store(repo, [item("2"), item("3")])
    assert len(again.inserted_ids) == 1 and again.duplicates == 1
    assert repo.total_messages() == 3


def test_store_batch_starts_first_response_and_resolution_clocks_at_post_time(db: sqlite_utils.Database) -> None:
    repo = setup(db)
    result = store(repo, [item("1", posted=T0 - 600)], fetched=T0)
    (mention_id,) = result.new_heads
    deadlines = {d.kind: d for d in repo.deadlines(mention_id)}
    assert deadlines[DeadlineKind.FIRST_RESPONSE].due_at == T0 - 600 + 30 * 60
    assert deadlines[DeadlineKind.FIRST_RESPONSE].warn_at == T0 - 600 + 30 * 60 - 450
    assert deadlines[DeadlineKind.RESOLUTION].due_at == T0 - 600 + 24 * 3600
    row = repo.rows_by_id([mention_id])[mention_id]
    assert row.due_at == T0 - 600 + 30 * 60
    assert row.fetched_at == T0 and row.posted_at == T0 - 600


def test_reply_in_thread_joins_the_head_and_is_not_a_new_queue_item(db: sqlite_utils.Database) -> None:
    repo = setup(db)
    head = store(repo, [item("1")]).new_heads[0]
    result = store(repo, [item("2", parent="1", posted=T0 + 60), item("3", parent="2", posted=T0 + 120)])
    assert result.new_heads == ()
    assert result.follow_up_heads == (head,)
    assert repo.queue_ids() == [head]
    thread = repo.thread(head)
    assert [m.external_id for m in thread] == ["1", "2", "3"]
    assert all(m.thread_key == "1" for m in thread)
    assert repo.rows_by_id([head])[head].message_count == 3


def test_follow_up_reopens_a_resolved_item_with_a_next_response_clock(db: sqlite_utils.Database) -> None:
    repo = setup(db)
    head = store(repo, [item("1")]).new_heads[0]
    db.conn.execute("UPDATE mentions SET status = 'resolved' WHERE id = ?", (head,))
    db.conn.execute("UPDATE deadlines SET met_at = ? WHERE mention_id = ?", (T0 + 100, head))
    store(repo, [item("2", parent="1", posted=T0 + 3600)])
    row = repo.rows_by_id([head])[head]
    assert row.status is MentionStatus.OPEN
    nxt = [d for d in repo.deadlines(head) if d.kind is DeadlineKind.NEXT_RESPONSE]
    assert len(nxt) == 1 and nxt[0].due_at == T0 + 3600 + 3600
    assert row.due_at == T0 + 3600 + 3600
    assert [e.kind for e in EventRepo(db).for_mention(head)].count("reopened") == 1


def test_customer_first_contact_is_marked_once(db: sqlite_utils.Database) -> None:
    repo = setup(db)
    first = store(repo, [item("1", author="new"), item("2", author="new", posted=T0 + 5)])
    rows = repo.rows_by_id(first.inserted_ids)
    flags = sorted((r.external_id, r.is_first_contact) for r in rows.values())
    assert flags == [("1", True), ("2", False)]
    later = store(repo, [item("3", author="new", posted=T0 + 50)])
    assert not repo.rows_by_id(later.inserted_ids)[later.inserted_ids[0]].is_first_contact
    count = db.conn.execute("SELECT contact_count FROM customers WHERE external_id = 'id-new'").fetchone()[0]
    assert count == 3


def test_queue_is_ordered_by_due_time_in_sql(db: sqlite_utils.Database) -> None:
    repo = setup(db)
    res = store(repo, [item("late", posted=T0 + 500), item("early", posted=T0), item("mid", posted=T0 + 200)])
    rows = repo.rows_by_id(res.inserted_ids)
    order = [rows[i].external_id for i in repo.queue_ids()]
    assert order == ["early", "mid", "late"]
    db.conn.execute("UPDATE mentions SET status = 'resolved' WHERE external_id = 'early'")
    assert len(repo.queue_ids(QueueView.OPEN)) == 2
    assert len(repo.queue_ids(QueueView.ALL)) == 3


def test_full_text_index_follows_inserts(db: sqlite_utils.Database) -> None:
    repo = setup(db)
    store(repo, [item("1", text="my parcel never arrived"), item("2", text="love the new app", author="bo")])
    hits = db.conn.execute("SELECT rowid FROM mentions_fts WHERE mentions_fts MATCH 'parcel'").fetchall()
    assert len(hits) == 1
    by_author = db.conn.execute("SELECT rowid FROM mentions_fts WHERE mentions_fts MATCH 'author_handle:bo'").fetchall()
    assert len(by_author) == 1


def test_mark_breaches_logs_each_breach_once(db: sqlite_utils.Database) -> None:
    repo = setup(db)
    head = store(repo, [item("1")]).new_heads[0]
    assert repo.mark_breaches(T0 + 29 * 60) == []
    assert repo.mark_breaches(T0 + 31 * 60) == [head]
    assert repo.mark_breaches(T0 + 40 * 60) == []
    assert EventRepo(db).count("breached") == 1
    first = next(d for d in repo.deadlines(head) if d.kind is DeadlineKind.FIRST_RESPONSE)
    assert first.breached_at == T0 + 30 * 60


def test_failed_batch_writes_nothing(db: sqlite_utils.Database) -> None:
    repo = setup(db)
    bad = item("2", account_id=1)
    db.conn.execute("DROP TABLE deadlines")  # the batch will fail half-way through
    with pytest.raises(StorageError, match="Could not store 2 synced mentions"):
        store(repo, [item("1"), bad])
    assert repo.total_messages() == 0
    assert db.conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 0


def _stored(db: sqlite_utils.Database) -> tuple[list[tuple[object, ...]], ...]:
    return (
        db.conn.execute(
            "SELECT id, external_id, head_id, customer_id, is_first_contact, due_at, warn_at, message_count, status "
            "FROM mentions ORDER BY id"
        ).fetchall(),
        db.conn.execute(
            "SELECT mention_id, kind, started_at, due_at, warn_at FROM deadlines ORDER BY mention_id, kind"
        ).fetchall(),
        db.conn.execute("SELECT at, mention_id, kind, data FROM events ORDER BY mention_id, at, kind").fetchall(),
        db.conn.execute("SELECT id, external_id, contact_count FROM customers ORDER BY id").fetchall(),
        db.conn.execute("SELECT rowid FROM mentions_fts WHERE mentions_fts MATCH 'refund' ORDER BY rowid").fetchall(),
    )


def test_offset_plans_store_exactly_what_a_per_item_plan_stores(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from storage.db import open_database
    from storage.rows import OffsetPlan

    offsets = OffsetPlan(
        ((DeadlineKind.FIRST_RESPONSE, 1800, 1350), (DeadlineKind.NEXT_RESPONSE, 3600, 2700),
         (DeadlineKind.RESOLUTION, 86_400, 64_800))
    )  # fmt: skip

    def per_item(kind: DeadlineKind, started_at: int) -> tuple[int, int] | None:
        return offsets(kind, started_at)  # a plain callable: the row-by-row path

    batches = [
        [item("1", posted=T0), item("2", author="bo", posted=T0 + 1, text="refund please"), item("1")],
        [item("3", posted=T0 + 9, parent="1"), item("4", author="cy", posted=T0 + 10, parent="3"),
         item("5", author="bo", posted=T0 + 11, text="refund?"), item("6", author="dee", posted=T0 + 12)],
        [item("2"), item("7", author="ana", posted=T0 + 20, parent="99")],
    ]  # fmt: skip
    results = []
    for name, plan in (("bulk", offsets), ("rows", per_item)):
        db = open_database(tmp_path / name / "c.sqlite3")
        repo = setup(db)
        for batch in batches:
            repo.store_batch(batch, channel="mastodon", fetched_at=T0 + 30, plan=plan)
        results.append(_stored(db))
        db.conn.close()
    bulk, rows = results
    assert bulk == rows
    # Five new items (7 answers an unknown post) with two clocks each; the follow-ups find a first response running.
    assert len(bulk[1]) == 2 * 5
