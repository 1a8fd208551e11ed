"""A scripted shift with hand-computed figures: two channels, replies, a holding reply, breaches, surveys."""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlite_utils

from console.sla.bands import SlaPolicy
from storage.accounts import AccountRepo
from storage.events import EventRepo
from storage.mentions import MentionRepo
from storage.rows import MentionKind, NewMention
from storage.settings import AGENT_NAME, SettingsRepo
from storage.shifts import ShiftRepo, ShiftRow
from tests.fakes.clock import FakeClock

AGENT = "Ana Agent"
DAY = 1_767_225_600  # 2026-01-01T00:00:00Z


def at(hh: int, mm: int = 0) -> int:
    return DAY + hh * 3600 + mm * 60


@dataclass
class ScriptedShift:
    shift: ShiftRow
    ids: dict[str, int]
    repo: ShiftRepo


class Script:
    def __init__(self, db: sqlite_utils.Database, clock: FakeClock) -> None:
        self.db = db
        self.clock = clock
        self.mentions = MentionRepo(db)
        self.events = EventRepo(db)
        accounts = AccountRepo(db)
        self.mastodon = accounts.add(kind="mastodon", handle="care", base_url="https://social.example", now=DAY)
        self.bluesky = accounts.add(kind="bluesky", handle="care.example", base_url="https://bsky.example", now=DAY)
        self.policy = SlaPolicy()
        self._serial = 0
        self._reply = 0

    def post(self, account_id: int, channel: str, handle: str, text: str, when: int, *, tags: str = "") -> int:
        self._serial += 1
        item = NewMention(
            account_id=account_id, external_id=f"s{self._serial}", author_external_id=f"acct-{handle}",
            author_handle=handle, author_name=handle.title(), text=text,
            url=f"https://{channel}.example/@{handle}/{self._serial}", posted_at=when, kind=MentionKind.PUBLIC,
            visibility="public", parent_external_id=None, raw_json="{}",
        )  # fmt: skip
        result = self.mentions.store_batch([item], channel=channel, fetched_at=when, plan=self.policy.plan)
        (head,) = result.new_heads
        if tags:
            self.db.conn.execute("UPDATE mentions SET tags = ? WHERE id = ?", (tags, head))
        return head

    def act(self, when: int, mention_id: int | None, kind: str, **data: object) -> None:
        self.events.append(at=when, actor=AGENT, kind=kind, mention_id=mention_id, **data)

    def reply(self, mention_id: int, queued: int, sent: int, *, purpose: str = "reply", meets: bool = True) -> None:
        self._reply += 1
        cur = self.db.conn.execute(
            "INSERT INTO replies (mention_id, text, purpose, idempotency_key, state, created_at, queued_at, sent_at, "
            "external_id) VALUES (?, ?, ?, ?, 'sent', ?, ?, ?, ?)",
            (
                mention_id,
                f"Reply {self._reply}",
                purpose,
                f"key-{self._reply}",
                queued,
                queued,
                sent,
                f"r{self._reply}",
            ),
        )
        reply_id = int(cur.lastrowid or 0)
        self.act(queued, mention_id, "reply_queued", reply_id=reply_id, purpose=purpose)
        self.events.append(at=sent, actor="outbox", kind="reply_sent", mention_id=mention_id, reply_id=reply_id,
                           purpose=purpose, external_id=f"r{self._reply}")  # fmt: skip
        if meets:  # what the SLA engine does on a human reply
            self.db.conn.execute(
                "UPDATE deadlines SET met_at = ? WHERE mention_id = ? AND kind = 'first_response' AND met_at IS NULL",
                (sent, mention_id),
            )

    def status(self, mention_id: int, when: int, old: str, new: str) -> None:
        self.db.conn.execute("UPDATE mentions SET status = ? WHERE id = ?", (new, mention_id))
        self.act(when, mention_id, "status_changed", **{"from": old, "to": new})
        if new in ("resolved", "community"):
            self.db.conn.execute(
                "UPDATE deadlines SET cancelled_at = ? WHERE mention_id = ? AND kind != 'resolution' "
                "AND met_at IS NULL AND breached_at IS NULL",
                (when, mention_id),
            )
            self.db.conn.execute(
                "UPDATE deadlines SET met_at = ? WHERE mention_id = ? AND kind = 'resolution' AND met_at IS NULL",
                (when, mention_id),
            )
        if new == "waiting":
            self.db.conn.execute(
                "UPDATE deadlines SET paused_at = ? WHERE mention_id = ? AND kind = 'resolution'", (when, mention_id)
            )

    def survey(self, mention_id: int, when: int, score: int | None) -> None:
        self.db.conn.execute(
            "INSERT INTO surveys (mention_id, sent_at, question_version, score, answer_text, parsed_at) "
            "VALUES (?, ?, 'v1', ?, ?, ?)",
            (mention_id, when, score, None if score is None else str(score), None if score is None else when + 300),
        )
        self.act(when, mention_id, "survey_sent", survey_id=0)


def scripted_shift(db: sqlite_utils.Database, clock: FakeClock) -> ScriptedShift:
    """The shift of the summary tests, 08:00–16:00 on 2026-01-01 (UTC); see test_summary.py for the figures."""
    s = Script(db, clock)
    m, b = s.mastodon.id, s.bluesky.id
    ids: dict[str, int] = {}
    ids["F"] = s.post(m, "mastodon", "ana", "Where is my order? Still waiting", at(6))
    s.mentions.mark_breaches(at(7))  # F's first response breached at 06:30, before the shift
    repo = ShiftRepo(db)
    SettingsRepo(db).set(AGENT_NAME, AGENT)
    shift = repo.start(AGENT, at(8))
    s.reply(ids["F"], at(8, 4), at(8, 5))
    ids["A"] = s.post(m, "mastodon", "ana", "My parcel is late again, order 123 @shop", at(8, 10), tags="shipping")
    ids["B"] = s.post(m, "mastodon", "ben", "The app crashes on login every time", at(8, 20), tags="app,login")
    s.reply(ids["A"], at(8, 24), at(8, 25))
    s.status(ids["A"], at(8, 30), "new", "resolved")
    s.survey(ids["A"], at(8, 31), 1)
    s.mentions.mark_breaches(at(8, 55))  # B's first response (due 08:50)
    s.reply(ids["B"], at(8, 58), at(9), purpose="holding")
    ids["C"] = s.post(m, "mastodon", "cara", "Refund for my parcel please", at(9), tags="billing")
    s.status(ids["C"], at(9, 30), "new", "community")
    s.reply(ids["B"], at(9, 59), at(10))
    ids["D"] = s.post(b, "bluesky", "dan", "Love the new app, great work", at(10))
    s.status(ids["B"], at(10, 5), "open", "resolved")
    s.survey(ids["B"], at(10, 6), 6)
    s.reply(ids["D"], at(10, 9), at(10, 10))
    s.status(ids["D"], at(10, 11), "new", "waiting")
    s.survey(ids["D"], at(10, 12), None)
    ids["E"] = s.post(b, "bluesky", "eve", "Parcel never arrived 📦", at(15), tags="shipping")
    clock.set(at(16))
    s.mentions.mark_breaches(at(16))  # E's first response (due 15:30)
    shift = repo.end(shift.id, at(16), "Chase the courier for @eve's parcel")
    return ScriptedShift(shift, ids, repo)


def big_shift(db: sqlite_utils.Database, clock: FakeClock, n: int) -> ScriptedShift:
    """A shift of ``n`` items received over 8 hours, a third resolved by the agent, with replies."""
    s = Script(db, clock)
    repo = ShiftRepo(db)
    shift = repo.start(AGENT, at(8))
    step = max(1, 8 * 3600 // max(1, n))
    items = [
        NewMention(
            account_id=s.mastodon.id, external_id=f"b{i}", author_external_id=f"acct-c{i % 997}",
            author_handle=f"c{i % 997}", author_name=f"C {i % 997}", text=f"Order {i} parcel question, café ✓",
            url=f"https://social.example/@c/{i}", posted_at=at(8) + i * step % (8 * 3600), kind=MentionKind.PUBLIC,
            visibility="public", parent_external_id=None, raw_json="{}",
        )
        for i in range(n)
    ]  # fmt: skip
    heads = list(s.mentions.store_batch(items, channel="mastodon", fetched_at=at(8), plan=s.policy.plan).new_heads)
    events = []
    for i, head in enumerate(heads[::3]):
        when = min(at(15, 59), at(8) + i * step * 3 + 120)
        events.append((when, AGENT, head, "status_changed", json.dumps({"from": "new", "to": "resolved"})))
    db.conn.executemany("INSERT INTO events (at, actor, mention_id, kind, data) VALUES (?,?,?,?,?)", events)
    clock.set(at(16))
    shift = repo.end(shift.id, at(16), "")
    return ScriptedShift(shift, {str(i): h for i, h in enumerate(heads)}, repo)
