"""Our replies as thread entries: agent names from the log, states, folded edits, follow-up corrections, order."""

from __future__ import annotations

import json

from console.replies.our_replies import OurReply, merge_thread, our_replies
from storage.rows import EventRow, MentionKind, MentionRow, MentionStatus, ReplyRow, ReplyState


def reply(rid: int, text: str, state: ReplyState, *, at: int, ext: str | None = None, **kw: object) -> ReplyRow:
    return ReplyRow(
        id=rid, mention_id=1, text=text, visibility=str(kw.pop("visibility", "public")), idempotency_key=f"k{rid}",
        state=state, attempts=0, external_id=ext, error=str(kw.pop("error", "")), created_at=at,
        sent_at=at if state is ReplyState.SENT else None, queued_at=at, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def queued(rid: int, actor: str, at: int = 0) -> EventRow:
    return EventRow(rid, at, actor, 1, "reply_queued", json.dumps({"reply_id": rid, "purpose": "reply"}))


def message(mid: int, text: str, at: int, ext: str) -> MentionRow:
    return MentionRow(
        id=mid, account_id=1, external_id=ext, thread_key="t", head_id=None if mid == 1 else 1,
        parent_external_id=None, customer_id=1, author_handle="ana", author_name="Ana", text=text, url="",
        posted_at=at, fetched_at=at, kind=MentionKind.PUBLIC, visibility="public", status=MentionStatus.OPEN,
        priority=0, tags="", is_first_contact=False, due_at=None, warn_at=None, last_message_at=at,
        message_count=1, channel="mastodon",
    )  # fmt: skip


def test_agents_states_and_follow_up_corrections() -> None:
    rows = [
        reply(1, "on it", ReplyState.SENT, at=100, ext="r1"),
        reply(2, "typo fix", ReplyState.SENT, at=200, ext="r2", corrects_id=1, purpose="correction"),
        reply(3, "later", ReplyState.QUEUED, at=300, visibility="direct"),
        reply(4, "oops", ReplyState.FAILED, at=400, error="refused"),
    ]
    events = [queued(1, "Sam"), queued(2, "Ana"), queued(3, "Sam"), queued(4, "Sam")]
    out = our_replies(rows, events)
    assert [(r.reply_id, r.agent, r.state_text) for r in out] == [
        (1, "Sam", "Sent"), (2, "Ana", "Sent"), (3, "Sam", "Queued"), (4, "Sam", "Not sent – refused"),
    ]  # fmt: skip
    assert out[1].correction and not out[1].edited and out[1].labels == ["correction"]
    assert out[2].labels == ["Direct message"]


def test_an_edit_in_place_is_folded_into_the_reply_it_corrects() -> None:
    rows = [
        reply(1, "Monday", ReplyState.SENT, at=100, ext="r1"),
        reply(2, "Tuesday", ReplyState.SENT, at=200, ext="r1", corrects_id=1, purpose="correction"),
        reply(3, "Wednesday", ReplyState.QUEUED, at=300, corrects_id=1, purpose="correction"),
    ]
    out = our_replies(rows, [queued(1, "Sam")])
    assert [(r.reply_id, r.text, r.edited, r.correction) for r in out] == [
        (1, "Tuesday", True, False),
        (3, "Wednesday", False, True),  # not sent yet: its own entry until it is
    ]


def test_merge_puts_replies_between_messages_and_shows_a_stored_copy_once() -> None:
    messages = [message(1, "help", 100, "s1"), message(2, "thanks", 300, "s2"), message(3, "copy", 200, "r1")]
    rows = [reply(1, "on it", ReplyState.SENT, at=200, ext="r1"), reply(2, "tie", ReplyState.QUEUED, at=300)]
    merged = merge_thread(messages, rows, [])
    kinds = [("ours", e.text) if isinstance(e, OurReply) else ("customer", e.text) for e in merged]
    assert kinds == [("customer", "help"), ("ours", "on it"), ("customer", "thanks"), ("ours", "tie")]
