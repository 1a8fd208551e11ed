"""Replies the brand posted from anywhere, found on the channel during sync (issue #22 item 5).

A colleague's install, the channel's own app or a second solo copy answers a customer: the sync reads the
account's own recent posts, and each one that answers a stored customer message is kept here as a sent reply
of the item (so the thread shows it, the queue counts the item answered and the outbox does not answer it a
second time) with a ``reply_seen`` event (the team replicator pushes it; docs/TEAM.md).

A seen reply is an ordinary ``replies`` row (state ``sent``, purpose ``reply``) whose idempotency key is
``seen:<account id>:<external id>``: that key makes recording it idempotent and tells it apart from the
replies this copy wrote itself.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from storage.driver import fetch_one, repository, says, scalar
from storage.events import write_event
from storage.rows import MentionStatus, ReplyState

#: The idempotency key of every seen reply starts with this (see :func:`seen_key`).
SEEN_KEY_PREFIX = "seen:"
#: The event a seen reply writes (docs/TEAM.md, "Event kinds").
REPLY_SEEN = "reply_seen"


def seen_key(account_id: int, external_id: str) -> str:
    """The idempotency key of the seen reply with ``external_id`` on ``account_id`` (one row per post)."""
    return f"{SEEN_KEY_PREFIX}{account_id}:{external_id}"


def is_seen_key(idempotency_key: str) -> bool:
    """Whether a reply with this idempotency key was found on the channel rather than written here."""
    return idempotency_key.startswith(SEEN_KEY_PREFIX)


@dataclass(frozen=True, slots=True)
class SeenRecord:
    """A seen reply just stored: which item it answered, and when the brand posted it."""

    reply_id: int
    mention_id: int  # the item (thread head)
    external_id: str
    posted_at: int


@repository
class SeenReplyRepo:
    """The own-posts cursor per account and the seen replies themselves."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.conn

    # ------------------------------------------------------------------ cursor
    def cursor(self, account_id: int) -> dict[str, Any] | None:
        """Where the last read of the account's own posts stopped (None: never read)."""
        raw = scalar(self._conn, "SELECT cursor FROM own_posts_state WHERE account_id = ?", (account_id,))
        if not raw:
            return None
        value = json.loads(str(raw))
        return value if isinstance(value, dict) else None

    @says("Could not save where the reading of the account's own posts got to")
    def set_cursor(self, account_id: int, cursor: dict[str, Any]) -> None:
        """Save the cursor once the posts it covers are stored (at-least-once, like the mentions cursor)."""
        with self._db.atomic():
            self._conn.execute(
                "INSERT INTO own_posts_state (account_id, cursor) VALUES (?, ?) "
                "ON CONFLICT (account_id) DO UPDATE SET cursor = excluded.cursor",
                (account_id, json.dumps(cursor, sort_keys=True)),
            )

    def oldest_open(self, account_id: int) -> int | None:
        """When the oldest open item's latest customer message was posted: how far a first read goes back."""
        value = scalar(
            self._conn,
            "SELECT min(last_message_at) FROM mentions WHERE account_id = ? AND head_id IS NULL AND status IN (?,?,?)",
            (account_id, MentionStatus.NEW.value, MentionStatus.OPEN.value, MentionStatus.WAITING.value),
        )
        return None if value is None else int(value)

    # ------------------------------------------------------------------ seen replies
    def answered_item(self, account_id: int, parent_external_id: str) -> int | None:
        """The item a post answering ``parent_external_id`` belongs to: the parent is a stored customer message,
        or a reply of the brand's already stored (ours or seen) in an item's thread. None: not in any item."""
        row = fetch_one(
            self._conn,
            "SELECT coalesce(head_id, id) AS item FROM mentions WHERE account_id = ? AND external_id = ?",
            (account_id, parent_external_id),
        )
        if row is not None:
            return int(row["item"])
        row = fetch_one(
            self._conn,
            "SELECT r.mention_id AS item FROM replies r JOIN mentions m ON m.id = r.mention_id "
            "WHERE r.external_id = ? AND m.account_id = ? AND r.state = ? ORDER BY r.id LIMIT 1",
            (parent_external_id, account_id, ReplyState.SENT.value),
        )
        return None if row is None else int(row["item"])

    def is_known(self, account_id: int, external_id: str) -> bool:
        """Whether the post is already stored as a reply of the account (one of ours, or seen before), or as a
        message (a brand post the mentions sync stored, e.g. one that mentions the brand itself)."""
        found = scalar(
            self._conn,
            "SELECT 1 FROM replies r JOIN mentions m ON m.id = r.mention_id WHERE r.external_id = ? "
            "AND m.account_id = ? UNION ALL SELECT 1 FROM mentions WHERE account_id = ? AND external_id = ? LIMIT 1",
            (external_id, account_id, account_id, external_id),
        )
        return found is not None

    @says("Could not record a reply seen on the channel")
    def record(
        self,
        *,
        account_id: int,
        mention_id: int,
        external_id: str,
        url: str,
        text: str,
        posted_at: int,
        visibility: str,
        now: int,
        actor: str,
        client: str = "",
    ) -> SeenRecord | None:
        """Store one of the brand's posts as a sent reply of item ``mention_id``, with its ``reply_seen`` event.

        Idempotent on the post: a post stored before (seen, or sent by this copy's outbox) is not stored again.

        Args:
            account_id: The channel account that posted it.
            mention_id: The item (thread head) it answers.
            external_id: The post's id on the channel.
            url: Its link.
            text: Its plain text.
            posted_at: When the brand posted it (epoch seconds).
            visibility: The channel's visibility word.
            now: When it was found (the row's ``created_at``: the outbox compares it with what the agent saw).
            actor: Who the event names: where it was posted ("on Mastodon").
            client: The app that posted it, when the channel says (Mastodon's ``application.name``).

        Returns:
            What was stored, or None when the post was already known.
        """
        with self._db.atomic():
            if self.is_known(account_id, external_id):
                return None
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO replies (mention_id, target_id, text, visibility, purpose, idempotency_key, "
                "state, external_id, url, created_at, queued_at, sent_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    mention_id, mention_id, text, visibility, "reply", seen_key(account_id, external_id),
                    ReplyState.SENT.value, external_id, url, now, posted_at, posted_at,
                ),
            )  # fmt: skip
            if not cur.rowcount:
                return None
            reply_id = int(cur.lastrowid or 0)
            data: dict[str, Any] = {
                "reply_id": reply_id,
                "external_id": external_id,
                "url": url,
                "text": text,
                "posted_at": posted_at,
                "visibility": visibility,
                "by": actor,  # where it was posted; the event's actor, kept in the data for the team log
            }
            if client:
                data["client"] = client
            write_event(self._conn, at=posted_at, actor=actor, kind=REPLY_SEEN, mention_id=mention_id, data=data)
        return SeenRecord(reply_id, mention_id, external_id, posted_at)
