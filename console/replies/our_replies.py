"""Our own replies as entries of a conversation: who wrote them, their outbox state, edits, in thread order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from console.model import event_data
from console.replies.outbox import plain_reason
from storage.rows import EventRow, MentionRow, ReplyRow, ReplyState
from storage.seen_replies import REPLY_SEEN, is_seen_key

__all__ = ["OurReply", "ReplyRow", "ThreadEntry", "merge_thread", "our_replies"]

#: The ``reply_failed`` error of a reply the agent withdrew before it left (storage.replies.ReplyRepo.cancel).
WITHDRAWN = "withdrawn"

_PURPOSES = {"holding": "Holding reply", "survey": "Net Easy survey", "status": "Status post"}
#: Who a reply seen on the channel is shown as when the channel did not name the app it came from.
ANOTHER_APP = "Another app"


@dataclass(frozen=True, slots=True)
class OurReply:
    """One reply of ours as the thread shows it.

    ``text`` is what the channel shows now: for a reply corrected by an edit in place, the corrected text.
    ``edited`` marks such a reply; ``correction`` marks a correction posted as its own follow-up (or one
    still on its way).
    """

    reply_id: int
    at: int  # where it sits in the thread: when it was sent, else when it was queued
    agent: str
    state: ReplyState
    text: str
    visibility: str
    purpose: str
    edited: bool = False
    correction: bool = False
    error: str = ""
    external_id: str | None = None  # its id on the channel once sent
    #: Posted by the brand's account from elsewhere (another install, the channel's own app) and found on the
    #: channel by the sync; ``agent`` then names the app, ``where`` the channel ("on Mastodon").
    elsewhere: bool = False
    where: str = ""

    @property
    def posted_at(self) -> int:
        """Same as ``at``: lets a thread sort messages and our replies by one key."""
        return self.at

    @property
    def state_text(self) -> str:
        """The state in words: "Sent", "Queued", "Sending…" or "Not sent – reason"."""
        match self.state:
            case ReplyState.SENT:
                return "Sent from elsewhere" if self.elsewhere else "Sent"
            case ReplyState.SENDING:
                return "Sending…"
            case ReplyState.FAILED:
                return f"Not sent – {plain_reason(self.error)}" if self.error else "Not sent"
            case _:
                return "Queued"

    @property
    def labels(self) -> list[str]:
        """Short markers after the state: "edited", "correction", the kind of reply, "Direct message"."""
        out = []
        if self.where:
            out.append(self.where)
        if self.edited:
            out.append("edited")
        if self.correction:
            out.append("correction")
        if self.purpose in _PURPOSES:
            out.append(_PURPOSES[self.purpose])
        if self.visibility == "direct":
            out.append("Direct message")
        return out


#: A customer's message or one of our replies.
ThreadEntry = MentionRow | OurReply


def our_replies(replies: Sequence[ReplyRow], events: Sequence[EventRow]) -> list[OurReply]:
    """Turn an item's outbox rows into thread entries, oldest first.

    The agent's name comes from each reply's ``reply_queued`` event (the actor who queued it); a reply seen on
    the channel (posted from elsewhere) names the app it came from and the channel, from its ``reply_seen``
    event, and reads "Sent from elsewhere". Withdrawn
    replies never left and are left out. A correction sent as an edit in place (same id on the channel as
    the reply it corrects) is folded into that reply, which shows the new text marked "edited"; a correction
    posted as its own reply, or one not sent yet, is an entry of its own marked "correction".

    Args:
        replies: The item's replies (``Outbox.replies``), any order.
        events: The item's event log (for the agents' names).

    Returns:
        The entries in thread order (by ``at``, then reply id).
    """
    agents: dict[int, str] = {}
    seen_where: dict[int, str] = {}
    withdrawn: set[int] = set()
    for event in events:
        data = event_data(event.data)
        reply_id = data.get("reply_id")
        if not isinstance(reply_id, int):
            continue
        if event.kind == "reply_queued":
            agents[reply_id] = event.actor
        elif event.kind == REPLY_SEEN:
            client = data.get("client")
            agents[reply_id] = client if isinstance(client, str) and client else ANOTHER_APP
            seen_where[reply_id] = event.actor
        elif event.kind == "reply_failed" and data.get("error") == WITHDRAWN:
            withdrawn.add(reply_id)
    by_id = {r.id: r for r in replies}
    edits: dict[int, ReplyRow] = {}
    for row in sorted(replies, key=lambda r: (r.sent_at or 0, r.id)):
        original = by_id.get(row.corrects_id) if row.corrects_id is not None else None
        if (
            original is not None
            and row.state is ReplyState.SENT
            and row.external_id is not None
            and row.external_id == original.external_id
        ):
            edits[original.id] = row  # the newest edit wins
    folded = {edit.id for edit in edits.values()}
    out: list[OurReply] = []
    for row in replies:
        if row.id in folded or row.state is ReplyState.DRAFT:
            continue
        if row.state is ReplyState.FAILED and row.id in withdrawn:
            continue
        edit = edits.get(row.id)
        elsewhere = is_seen_key(row.idempotency_key)
        out.append(
            OurReply(
                reply_id=row.id,
                at=row.sent_at if row.sent_at is not None else (row.queued_at or row.created_at),
                agent=agents.get(row.id, "") or (ANOTHER_APP if elsewhere else "agent"),
                state=row.state,
                text=edit.text if edit is not None else row.text,
                visibility=row.visibility,
                purpose=row.purpose if row.purpose != "correction" else "reply",
                edited=edit is not None,
                correction=row.purpose == "correction" or row.corrects_id is not None,
                error=row.error,
                external_id=row.external_id,
                elsewhere=elsewhere,
                where=seen_where.get(row.id, "") if elsewhere else "",
            )
        )
    out.sort(key=lambda r: (r.at, r.reply_id))
    return out


def merge_thread(
    messages: Sequence[MentionRow], replies: Sequence[ReplyRow], events: Sequence[EventRow]
) -> list[ThreadEntry]:
    """The customers' messages and our replies in one timeline.

    A reply of ours the sync also stored as a message (same id on the channel) is shown once, as ours.
    At equal times the customer's message comes first (a reply follows what it answers).

    Returns:
        Messages and :class:`OurReply` entries, oldest first.
    """
    ours = our_replies(replies, events)
    posted = {r.external_id for r in replies if r.external_id}
    customer = [m for m in messages if m.external_id not in posted]
    keyed: list[tuple[int, int, int, ThreadEntry]] = [(m.posted_at, 0, i, m) for i, m in enumerate(customer)]
    keyed += [(r.at, 1, i, r) for i, r in enumerate(ours)]
    keyed.sort(key=lambda k: k[:3])
    return [entry for *_k, entry in keyed]
