"""Manual intake: pasted links and text become queue items with SLA deadlines; bad input stores nothing."""

from __future__ import annotations

import pytest
import sqlite_utils

from console.sla.bands import SlaPolicy
from console.sync.manual import IntakeError, ManualIntake, guess_source, normalise_link, reply_handoff
from storage.accounts import AccountRepo
from storage.mentions import MentionRepo, QueueView
from storage.rows import MentionKind
from tests.fakes.clock import FakeClock


@pytest.fixture
def intake(db: sqlite_utils.Database, clock: FakeClock) -> ManualIntake:
    return ManualIntake(MentionRepo(db), AccountRepo(db), clock, SlaPolicy().plan)


def test_pasted_post_enters_the_queue_with_deadlines(
    intake: ManualIntake, db: sqlite_utils.Database, clock: FakeClock
) -> None:
    result = intake.add(link=" https://x.com/Cust_1/status/1578516295611748353?s=20#frag ", text=" where is my order? ")
    assert not result.duplicate and result.source == "x" and result.mention_id is not None
    mentions = MentionRepo(db)
    assert mentions.queue_ids(QueueView.OPEN) == [result.mention_id]
    row = mentions.rows_by_id([result.mention_id])[result.mention_id]
    assert row.author_handle == "Cust_1"
    assert row.url == "https://x.com/Cust_1/status/1578516295611748353"
    assert row.text == "where is my order?"
    assert row.channel == "manual"
    assert row.due_at is not None and row.due_at > clock.now()
    again = intake.add(link="https://x.com/Cust_1/status/1578516295611748353", text="where is my order?")
    assert again.duplicate and again.mention_id is None


def test_follow_up_joins_the_thread_and_dm_is_direct(intake: ManualIntake, db: sqlite_utils.Database) -> None:
    head = intake.add(link="https://forum.example/t/1", text="first", author="@dana")
    follow = intake.add(
        link="https://forum.example/t/1/2", text="second", author="dana", parent_link="https://forum.example/t/1"
    )
    assert follow.mention_id == head.mention_id  # the follow-up's head
    dm = intake.add(link="https://www.instagram.com/direct/t/1", text="hi", direct=True)
    assert dm.mention_id is not None
    assert MentionRepo(db).rows_by_id([dm.mention_id])[dm.mention_id].kind is MentionKind.DIRECT


@pytest.mark.parametrize(
    ("link", "text", "message"),
    [("ftp://x", "t", "https://"), ("not a link", "t", "https://"), ("https://x.com/a/status/1", "  ", "text")],
)
def test_bad_input_is_explained_and_stores_nothing(
    intake: ManualIntake, db: sqlite_utils.Database, link: str, text: str, message: str
) -> None:
    with pytest.raises(IntakeError, match=message):
        intake.add(link=link, text=text)
    assert MentionRepo(db).queue_ids(QueueView.OPEN) == []


def test_helpers() -> None:
    assert guess_source("https://bsky.app/profile/cust.bsky.social/post/3k") == ("bluesky", "cust.bsky.social")
    assert guess_source("https://example.org/x") == ("web", "")
    assert normalise_link("HTTPS://Example.org/a?b=1#c") == "https://example.org/a?b=1"
    assert reply_handoff("https://x.com/a/status/1", "Thanks!").open_url == "https://x.com/a/status/1"
