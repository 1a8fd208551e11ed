"""Driver errors never cross the storage boundary raw: every repository method raises the StorageError tree."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlite_utils

from console.sla.bands import SlaPolicy
from storage.accounts import AccountRepo, SyncStateRepo
from storage.db import open_database
from storage.errors import DatabaseUnwritable, StorageError
from storage.events import EventRepo
from storage.mentions import MentionRepo, QueueView
from storage.replies import ReplyRepo
from storage.rows import MentionKind, NewMention
from storage.settings import Setting, SettingsRepo
from storage.shifts import ShiftRepo
from storage.surveys import SurveyRepo
from storage.templates import TemplateRepo
from storage.triage import TriageRepo

T0 = 1_767_225_600

#: Every public method of ReplyRepo (the repository that wrapped 1 of its 21 statements by hand).
REPLY_CALLS: dict[str, Callable[[ReplyRepo], object]] = {
    "enqueue": lambda r: r.enqueue(
        mention_id=1,
        target_id=1,
        text="hi",
        visibility="public",
        purpose="reply",
        idempotency_key="k",
        now=T0,
        actor="ana",
    ),
    "save_draft": lambda r: r.save_draft(1, "draft", key="d", now=T0),
    "mark_sending": lambda r: r.mark_sending(1, now=T0),
    "mark_sent": lambda r: r.mark_sent(1, external_id="x", url="", at=T0),
    "mark_waiting": lambda r: r.mark_waiting(1, error="offline", next_attempt_at=None),
    "mark_failed": lambda r: r.mark_failed(1, error="refused", at=T0),
    "hold": lambda r: r.hold(1, reason="fresh"),
    "release": lambda r: r.release(1, now=T0),
    "cancel": lambda r: r.cancel(1, now=T0, actor="ana"),
    "requeue": lambda r: r.requeue(1, now=T0, actor="ana"),
    "get": lambda r: r.get(1),
    "draft": lambda r: r.draft(1),
    "for_mention": lambda r: r.for_mention(1),
    "pending": lambda r: r.pending(),
    "failed": lambda r: r.failed(),
    "account_of": lambda r: r.account_of(1),
    "waiting_count": lambda r: r.waiting_count(),
    "latest_states": lambda r: r.latest_states([1]),
}

#: A few methods of the other repositories, read and write.
OTHER_CALLS: dict[str, Callable[[sqlite_utils.Database], object]] = {
    "AccountRepo.list": lambda db: AccountRepo(db).list(),
    "SyncStateRepo.get": lambda db: SyncStateRepo(db).get(1),
    "EventRepo.append": lambda db: EventRepo(db).append(at=T0, actor="ana", kind="note"),
    "EventRepo.for_mention": lambda db: EventRepo(db).for_mention(1),
    "MentionRepo.queue_ids": lambda db: MentionRepo(db).queue_ids(QueueView.OPEN),
    "MentionRepo.thread": lambda db: MentionRepo(db).thread(1),
    "SettingsRepo.get": lambda db: SettingsRepo(db).get(Setting("x", 1, int)),
    "ShiftRepo.running": lambda db: ShiftRepo(db).running(),
    "SurveyRepo.needing_review": lambda db: SurveyRepo(db).needing_review(),
    "TemplateRepo.all": lambda db: TemplateRepo(db).all(),
    "TriageRepo.state": lambda db: TriageRepo(db).state(1),
}


def _closed() -> sqlite_utils.Database:
    db = open_database(None)
    db.conn.close()
    return db


@pytest.mark.parametrize("method", sorted(REPLY_CALLS))
def test_reply_repo_driver_error_arrives_as_storage_error(method: str) -> None:
    db = open_database(None)
    repo = ReplyRepo(db)
    db.conn.close()  # any driver error: "Cannot operate on a closed database"
    with pytest.raises(StorageError, match="closed database"):
        REPLY_CALLS[method](repo)


@pytest.mark.parametrize("call", sorted(OTHER_CALLS))
def test_repository_driver_error_arrives_as_storage_error(call: str) -> None:
    with pytest.raises(StorageError, match="closed database"):
        OTHER_CALLS[call](_closed())


def _item(ext: str) -> NewMention:
    return NewMention(
        account_id=1, external_id=ext, author_external_id="id-ana", author_handle="ana", author_name="Ana",
        text="hi", url=f"https://x.example/{ext}", posted_at=T0, kind=MentionKind.PUBLIC, visibility="public",
        parent_external_id=None, raw_json="{}",
    )  # fmt: skip


def test_write_to_a_read_only_database_is_database_unwritable_with_the_methods_sentence(tmp_path: Path) -> None:
    path = tmp_path / "care.sqlite3"
    db = open_database(path)
    try:
        AccountRepo(db).add(kind="mastodon", handle="care", base_url="http://sandbox", now=T0)
        MentionRepo(db).store_batch([_item("1")], channel="mastodon", fetched_at=T0, plan=SlaPolicy().plan)
        db.conn.execute("PRAGMA query_only = ON")  # every write now fails as SQLITE_READONLY
        replies = ReplyRepo(db)
        with pytest.raises(DatabaseUnwritable) as caught:
            replies.enqueue(
                mention_id=1, target_id=1, text="hi", visibility="public", purpose="reply", idempotency_key="k",
                now=T0, actor="ana",
            )  # fmt: skip
        assert str(caught.value).startswith("Could not queue the reply: ")
        assert caught.value.path == path
        assert caught.value.reason == "the file or its folder is read-only"
        with pytest.raises(DatabaseUnwritable, match=r"^Could not mark sent \(ReplyRepo\): "):
            replies.mark_sent(1, external_id="x", url="", at=T0)
        with pytest.raises(DatabaseUnwritable, match=r"^Could not record the survey for item 1: "):
            SurveyRepo(db).create(
                mention_id=1, customer_id=None, reply_id=None, sent_at=T0, question_version="v1", actor="ana"
            )
        assert replies.pending() == []  # reads still work
    finally:
        db.conn.close()
