"""Survey test helpers: an outbox port that records sent replies, and a small world of items to survey."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from console.model import SyncReport
from console.sla.bands import SlaPolicy
from console.surveys.service import SurveyService
from storage.accounts import AccountRepo
from storage.events import EventRepo
from storage.mentions import MentionRepo
from storage.rows import MentionKind, MentionStatus, NewMention
from storage.settings import SettingsRepo
from storage.surveys import SurveyRepo, SurveyRow
from tests.fakes.clock import FakeClock


class RecordingOutbox:
    """The outbox port: stores the reply row as sent (with an external id, as the real outbox does)."""

    def __init__(self, db: sqlite_utils.Database, clock: FakeClock) -> None:
        self.db = db
        self.clock = clock
        self.calls: list[tuple[int, str, str | None]] = []

    def __call__(self, mention_id: int, text: str, visibility: str | None) -> int:
        self.calls.append((mention_id, text, visibility))
        now = int(self.clock.now())
        cur = self.db.conn.execute(
            "INSERT INTO replies (mention_id, text, visibility, purpose, idempotency_key, state, external_id, "
            "created_at, sent_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                mention_id,
                text,
                visibility or "public",
                "survey",
                f"k{len(self.calls)}",
                "sent",
                f"out-{len(self.calls)}",
                now,
                now,
            ),
        )
        return int(cur.lastrowid or 0)


class World:
    def __init__(self, db: sqlite_utils.Database, clock: FakeClock, channel: str = "mastodon") -> None:
        self.db = db
        self.clock = clock
        self.channel = channel
        self.account = AccountRepo(db).add(kind=channel, handle="care", base_url="http://x", now=int(clock.now()))
        self.mentions = MentionRepo(db)
        self.settings = SettingsRepo(db)
        self.repo = SurveyRepo(db)
        self.outbox = RecordingOutbox(db, clock)
        self.service = SurveyService(self.repo, self.mentions, self.settings, clock, self.outbox)
        self.n = 0
        self.heard: list[SurveyRow] = []
        self.service.subscribe(self.heard.extend)

    def message(self, author: str, text: str = "help", parent: str | None = None, **kw: Any) -> tuple[str, int]:
        self.n += 1
        ext = f"m{self.n}"
        result = self.mentions.store_batch(
            [
                NewMention(
                    account_id=self.account.id,
                    external_id=ext,
                    author_external_id=author,
                    author_handle=author,
                    author_name=author,
                    text=text,
                    url="",
                    posted_at=int(self.clock.now()),
                    kind=kw.get("kind", MentionKind.PUBLIC),
                    visibility="public",
                    parent_external_id=parent,
                    raw_json="{}",
                )
            ],
            channel=self.channel,
            fetched_at=int(self.clock.now()),
            plan=SlaPolicy().plan,
        )
        return ext, result.inserted_ids[0]

    def answered(self, head: int, *, resolve: bool = True) -> None:
        """The agent replied (first response met) and, by default, resolved the item."""
        now = int(self.clock.now())
        self.db.conn.execute(
            "INSERT INTO replies (mention_id, text, purpose, idempotency_key, state, external_id, created_at, sent_at) "
            "VALUES (?, 'on it', 'reply', ?, 'sent', ?, ?, ?)",
            (head, f"r{head}-{now}", f"reply-{head}-{now}", now, now),
        )
        self.db.conn.execute(
            "UPDATE deadlines SET met_at = ? WHERE mention_id = ? AND met_at IS NULL AND kind != 'resolution'",
            (now, head),
        )
        if resolve:
            self.db.conn.execute("UPDATE deadlines SET met_at = ? WHERE mention_id = ? AND met_at IS NULL", (now, head))
            self.set_status(head, MentionStatus.RESOLVED)

    def set_status(self, head: int, status: MentionStatus) -> None:
        old = self.db.conn.execute("SELECT status FROM mentions WHERE id = ?", (head,)).fetchone()[0]
        self.db.conn.execute("UPDATE mentions SET status = ? WHERE id = ?", (status.value, head))
        EventRepo(self.db).append(
            at=int(self.clock.now()),
            actor="ana",
            kind="status_changed",
            mention_id=head,
            **{"from": old, "to": status.value},
        )

    def status(self, head: int) -> str:
        return str(self.db.conn.execute("SELECT status FROM mentions WHERE id = ?", (head,)).fetchone()[0])

    def sync(self, *heads: int) -> list[Any]:
        """What a Poller report of these follow-ups makes the service read (through its listener)."""
        self.heard.clear()
        self.service.on_sync(SyncReport(self.account.id, int(self.clock.now()), follow_ups=heads))
        return list(self.heard)
