"""Size caps on stored messages (issue 20, sync 4): the text is cut with a marker and the link, the raw JSON is
slimmed so that a huge post is not stored twice, and normal messages are stored exactly as they came."""

from __future__ import annotations

import json

import sqlite_utils

from console.sla.bands import SlaPolicy
from storage.accounts import AccountRepo
from storage.mentions import MAX_RAW_CHARS, MAX_TEXT_CHARS, MentionRepo
from storage.rows import MentionKind, NewMention

T0 = 1_767_225_600


def message(ext: str, text: str, raw: dict[str, object]) -> NewMention:
    return NewMention(
        account_id=1, external_id=ext, author_external_id="id-ana", author_handle="ana", author_name="Ana",
        text=text, url=f"https://x.example/@ana/{ext}", posted_at=T0, kind=MentionKind.PUBLIC, visibility="public",
        parent_external_id=None, raw_json=json.dumps(raw),
    )  # fmt: skip


def stored(db: sqlite_utils.Database, items: list[NewMention]) -> list[tuple[str, str]]:
    AccountRepo(db).add(kind="mastodon", handle="care", base_url="http://sandbox", now=T0)
    MentionRepo(db).store_batch(items, channel="mastodon", fetched_at=T0, plan=SlaPolicy().plan)
    return [(r[0], r[1]) for r in db.conn.execute("SELECT text, raw FROM mentions ORDER BY id")]


def test_a_huge_post_is_cut_with_a_marker_and_its_link_and_its_raw_json_is_not_a_second_copy(
    db: sqlite_utils.Database,
) -> None:
    text = "refund " * 300_000  # 2.1 million characters
    ((kept, raw),) = stored(db, [message("1", text, {"id": "1", "content": f"<p>{text}</p>", "visibility": "public"})])

    assert kept.startswith("refund refund")
    assert len(kept) < MAX_TEXT_CHARS + 200
    assert kept.endswith(
        "[… cut by Care Console: 2,100,000 characters in all; the whole post: https://x.example/@ana/1]"
    )
    assert len(raw) < MAX_RAW_CHARS
    slim = json.loads(raw)
    assert slim["id"] == "1" and slim["visibility"] == "public"
    assert slim["content"].endswith("characters]") and len(slim["content"]) < 2_100
    (hit,) = db.conn.execute("SELECT rowid FROM mentions_fts WHERE mentions_fts MATCH 'refund'").fetchall()
    assert hit[0] == 1  # still found by search


def test_ordinary_messages_are_stored_exactly(db: sqlite_utils.Database) -> None:
    text = "Where is my order? " * 100
    raw = {"id": "2", "content": f"<p>{text}</p>"}
    ((kept, kept_raw),) = stored(db, [message("2", text, raw)])
    assert kept == text
    assert json.loads(kept_raw) == raw
