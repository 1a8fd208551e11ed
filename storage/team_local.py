"""The local side of team mode on the SQLite copy (docs/TEAM.md "Local side"; tables of migration 17).

What this copy holds of the team's event log: the push watermarks and the pull cursor, every team uid it
holds (pushed or applied) and the digest over them, the mirror of live claims, the conflicts to show, and the
events parked until their item arrives. It also reads the copy's own shared changes to push, translated from
local ids to the natural keys every machine shares (``console/team/keys.py`` spells the same keys in Python),
and writes what applying a colleague's change needs that no other repository writes (a colleague's sent
reply, an event carrying the team uid it was written for).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from storage.driver import chunked, converted, fetch_all, fetch_in, fetch_one, repository, says, scalar
from storage.events import event_json, write_event
from storage.rows import ReplyState
from storage.seen_replies import SEEN_KEY_PREFIX

#: Local event kinds that are shared facts and go up to the team log (docs/TEAM.md "Event kinds"). Derived
#: ones (SLA ``deadline_*``, ``responded``, ``reply_queued``, ``reply_failed``, "received", breaches) stay
#: local: every member derives them from the shared facts.
SHARED_KINDS: tuple[str, ...] = (
    "status_changed",
    "priority_changed",
    "tags_changed",
    "note_added",
    "reply_sent",
    "reply_seen",
    "survey_sent",
    "survey_answered",
    "follow_up_promised",
    "follow_up_kept",
    "send_anyway",
    "shift_started",
    "shift_ended",
    "handed_over",
)

PUSHED_EVENT_ID = "pushed_event_id"
PUSHED_MENTION_ID = "pushed_mention_id"
PULLED_SEQ = "pulled_seq"
MEMBER_UUID = "member_uuid"

#: SQL for an account's key, spelled as console/team/keys.py's ``account_key`` (alias ``a``).
_ACCOUNT_KEY_SQL = "a.kind || ':' || rtrim(a.base_url, '/') || ':' || ltrim(a.handle, '@')"


@dataclass(frozen=True, slots=True)
class Watermarks:
    """How far this copy has pushed its own events and mentions, and pulled the team log."""

    pushed_event_id: int
    pushed_mention_id: int
    pulled_seq: int


@dataclass(frozen=True, slots=True)
class OutgoingEvent:
    """One of this copy's own shared events, ready for the team log (uid derived by the caller)."""

    event_id: int
    at: int
    actor: str
    kind: str
    item_key: str | None
    #: The event's data with the shared keys added (``reply_key``, ``customer``...); local ids (``reply_id``,
    #: ``survey_id``, ``shift_id``, ``message``) are still there for the caller to turn into shared names.
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutgoingMention:
    """One locally stored message, as the team log's ``mention`` event says it."""

    mention_id: int
    item_key: str
    account_key: str
    account_kind: str
    base_url: str
    handle: str
    display_name: str
    is_sandbox: bool
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SharedEvent:
    """One event of the team log as this copy reads it (``seq`` from the server)."""

    seq: int
    uid: str
    author: str
    at: int
    kind: str
    item_key: str | None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClaimMirrorRow:
    """A live claim as mirrored locally (times in epoch seconds of the server clock)."""

    item_key: str
    mention_id: int | None
    holder: str
    claimed_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class ConflictRow:
    """An own change and a colleague's that could not both stand; ``winner`` says which one did."""

    id: int
    at: int
    mention_id: int | None
    item_key: str | None
    kind: str
    ours: dict[str, Any]
    theirs: dict[str, Any]
    winner: str
    reason: str
    seen: bool


@dataclass(frozen=True, slots=True)
class LocalEventRow:
    """A local event of one item, as conflict detection reads it."""

    id: int
    at: int
    actor: str
    remote_uid: str | None
    data: dict[str, Any]


def uid_digest(uids: Iterable[str]) -> tuple[int, str]:
    """``(count, sha256 hex)`` of the sorted uid strings joined by newlines: the server's formula
    (storage/team/events.py ``digest_of``), repeated here so the local copy needs no PostgreSQL driver."""
    texts = sorted(uids)
    return len(texts), hashlib.sha256("\n".join(texts).encode("ascii")).hexdigest()


def _data(text: object) -> dict[str, Any]:
    try:
        value = json.loads(str(text))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@repository
class TeamLocalRepo:
    """The team-mode tables of the SQLite copy. Never lets a raw sqlite3 error cross the boundary."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.conn

    # ------------------------------------------------------------------ transactions
    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (BEGIN IMMEDIATE) for a chunk of applied events; repositories used inside
        nest as savepoints. A savepoint when the caller is already in a transaction."""
        conn = self._conn
        with converted("Could not apply the team's changes", conn):
            if conn.in_transaction:
                with self._db.atomic():
                    yield
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                conn.rollback()  # a no-op when an error already ended the transaction
                raise
            conn.commit()

    # ------------------------------------------------------------------ state
    def get_state(self, key: str) -> str | None:
        value = scalar(self._conn, "SELECT value FROM team_state WHERE key = ?", (key,))
        return None if value is None else str(value)

    def set_state(self, key: str, value: str) -> None:
        with self._db.atomic():
            self._conn.execute(
                "INSERT INTO team_state (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def watermarks(self) -> Watermarks:
        rows = dict(self._conn.execute("SELECT key, value FROM team_state"))
        return Watermarks(
            int(rows.get(PUSHED_EVENT_ID, 0)), int(rows.get(PUSHED_MENTION_ID, 0)), int(rows.get(PULLED_SEQ, 0))
        )

    def max_event_id(self) -> int:
        return int(scalar(self._conn, "SELECT coalesce(max(id), 0) FROM events"))

    def max_mention_id(self) -> int:
        return int(scalar(self._conn, "SELECT coalesce(max(id), 0) FROM mentions"))

    def skip_applied_mentions(self, before_max: int) -> None:
        """Messages just stored from the team need no push: when every message up to ``before_max`` (the
        highest id before they were stored) was pushed already, the mentions watermark moves past them."""
        if self.watermarks().pushed_mention_id >= before_max:
            self._conn.execute(
                "INSERT INTO team_state (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = max(CAST(value AS INTEGER), excluded.value)",
                (PUSHED_MENTION_ID, self.max_mention_id()),
            )

    # ------------------------------------------------------------------ push
    @says("Could not read the changes to push")
    def outgoing_events(self, after_id: int, limit: int = 500) -> list[OutgoingEvent]:
        """This copy's own shared events after ``after_id`` (never those written applying a colleague's)."""
        kinds = ",".join(f"'{k}'" for k in SHARED_KINDS)  # constants, never input
        rows = fetch_all(
            self._conn,
            f"SELECT e.id, e.at, e.actor, e.kind, e.data, e.mention_id, "
            f"CASE WHEN m.id IS NULL THEN NULL ELSE {_ACCOUNT_KEY_SQL} || '#' || m.external_id END AS item_key "
            "FROM events e LEFT JOIN mentions m ON m.id = e.mention_id LEFT JOIN accounts a ON a.id = m.account_id "
            f"WHERE e.id > ? AND e.remote_uid IS NULL AND e.kind IN ({kinds}) ORDER BY e.id LIMIT ?",
            (after_id, limit),
        )
        out: list[OutgoingEvent] = []
        for row in rows:
            data = _data(row["data"])
            self._enrich(str(row["kind"]), data)
            key = None if row["item_key"] is None else str(row["item_key"])
            out.append(OutgoingEvent(int(row["id"]), int(row["at"]), str(row["actor"]), str(row["kind"]), key, data))
        return out

    def _enrich(self, kind: str, data: dict[str, Any]) -> None:
        """Add the shared names of the local ids ``data`` carries (a reply's key, a survey's customer...)."""
        reply_id = data.get("reply_id")
        survey_id = data.get("survey_id")
        if isinstance(survey_id, int):
            survey = fetch_one(
                self._conn,
                "SELECT s.reply_id, s.score, s.comment, c.channel || ':' || c.external_id AS customer "
                "FROM surveys s LEFT JOIN customers c ON c.id = s.customer_id WHERE s.id = ?",
                (survey_id,),
            )
            if survey is not None:
                data.setdefault("score", survey["score"])
                data.setdefault("comment", survey["comment"])
                data["customer"] = survey["customer"]
                if survey["reply_id"] is not None:
                    reply_id = int(survey["reply_id"])
        if isinstance(reply_id, int) and kind != "reply_seen":  # a seen post's local key names a local account
            reply = fetch_one(
                self._conn,
                "SELECT idempotency_key, text, url, purpose, sent_at, holding_until, external_id "
                "FROM replies WHERE id = ?",
                (reply_id,),
            )
            if reply is not None:
                data["reply_key"] = str(reply["idempotency_key"])
                if kind == "reply_sent":
                    data.update(
                        text=str(reply["text"]), url=str(reply["url"]), purpose=str(reply["purpose"]),
                        posted_at=reply["sent_at"], holding_until=reply["holding_until"],
                        external_id=data.get("external_id", reply["external_id"]),
                    )  # fmt: skip
        if kind == "tags_changed" and "to" not in data:
            data["to"] = data.get("tags", [])
        shift_id = data.get("shift_id")
        if isinstance(shift_id, int):
            shift = fetch_one(self._conn, "SELECT agent_name, notes FROM shifts WHERE id = ?", (shift_id,))
            if shift is not None:
                data.setdefault("agent", str(shift["agent_name"]))
                data.setdefault("notes", str(shift["notes"]))

    @says("Could not read the messages to push")
    def outgoing_mentions(self, after_id: int, limit: int = 500) -> list[OutgoingMention]:
        """Messages stored after ``after_id`` as ``mention`` events (the caller skips those it got from the team)."""
        rows = fetch_all(
            self._conn,
            f"SELECT m.id, {_ACCOUNT_KEY_SQL} AS account_key, a.kind AS account_kind, a.base_url, a.handle, "
            "a.display_name, a.is_sandbox, m.external_id, m.thread_key, m.parent_external_id, "
            "h.external_id AS head_external_id, c.external_id AS author_id, m.author_handle, m.author_name, m.text, "
            "m.url, m.posted_at, m.kind, m.visibility "
            "FROM mentions m JOIN accounts a ON a.id = m.account_id LEFT JOIN mentions h ON h.id = m.head_id "
            "LEFT JOIN customers c ON c.id = m.customer_id WHERE m.id > ? ORDER BY m.id LIMIT ?",
            (after_id, limit),
        )
        out: list[OutgoingMention] = []
        for r in rows:
            account = str(r["account_key"])
            data = {
                "account_key": account, "external_id": str(r["external_id"]), "thread_key": str(r["thread_key"]),
                "parent_external_id": r["parent_external_id"], "head_external_id": r["head_external_id"],
                "author_id": str(r["author_id"] or r["author_handle"]), "author_handle": str(r["author_handle"]),
                "author_name": str(r["author_name"]), "text": str(r["text"]), "url": str(r["url"]),
                "posted_at": int(r["posted_at"]), "kind": str(r["kind"]), "visibility": str(r["visibility"]),
            }  # fmt: skip
            out.append(
                OutgoingMention(
                    int(r["id"]), f"{account}#{r['external_id']}", account, str(r["account_kind"]),
                    str(r["base_url"]).rstrip("/"), str(r["handle"]).lstrip("@"), str(r["display_name"]),
                    bool(r["is_sandbox"]), data,
                )
            )  # fmt: skip
        return out

    def to_push(self) -> int:
        """How many own shared changes and messages wait to go up (for the status line)."""
        marks = self.watermarks()
        kinds = ",".join(f"'{k}'" for k in SHARED_KINDS)
        events = scalar(
            self._conn,
            f"SELECT count(*) FROM events WHERE id > ? AND remote_uid IS NULL AND kind IN ({kinds})",
            (marks.pushed_event_id,),
        )
        mentions = scalar(self._conn, "SELECT count(*) FROM mentions WHERE id > ?", (marks.pushed_mention_id,))
        return int(events) + int(mentions)

    def record_pushed(
        self, uids: Sequence[tuple[str, str, str | None]], *, event_id: int | None = None, mention_id: int | None = None
    ) -> None:
        """After the server committed a batch: hold its uids ((uid, kind, item key)) and move the watermark."""
        with self._db.atomic():
            self._conn.executemany(
                "INSERT INTO team_applied (uid, seq, kind, item_key) VALUES (?, NULL, ?, ?) "
                "ON CONFLICT (uid) DO NOTHING",
                uids,
            )
            for key, value in ((PUSHED_EVENT_ID, event_id), (PUSHED_MENTION_ID, mention_id)):
                if value is not None:
                    self._conn.execute(
                        "INSERT INTO team_state (key, value) VALUES (?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = max(CAST(value AS INTEGER), excluded.value)",
                        (key, value),
                    )

    # ------------------------------------------------------------------ applied uids
    def applied_seqs(self, uids: Iterable[str]) -> dict[str, int | None]:
        """The uids among ``uids`` this copy holds, with their server seq (None until read back)."""
        return {
            str(r["uid"]): None if r["seq"] is None else int(r["seq"])
            for r in fetch_in(self._conn, lambda m: f"SELECT uid, seq FROM team_applied WHERE uid IN ({m})", uids)
        }

    def mark_applied(self, rows: Iterable[tuple[str, int | None, str, str | None]]) -> None:
        """Hold team uids ((uid, seq, kind, item key)); a held uid only gains its seq."""
        with self._db.atomic():
            self._conn.executemany(
                "INSERT INTO team_applied (uid, seq, kind, item_key) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (uid) DO UPDATE SET seq = coalesce(team_applied.seq, excluded.seq)",
                list(rows),
            )

    def set_pulled(self, seq: int) -> None:
        """Move the pull cursor forward (never back)."""
        self._conn.execute(
            "INSERT INTO team_state (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = max(CAST(value AS INTEGER), excluded.value)",
            (PULLED_SEQ, seq),
        )

    def latest_seq(self, item_key: str, kinds: Sequence[str]) -> int | None:
        """The highest known server seq of an event of ``kinds`` about ``item_key`` this copy holds."""
        marks = ",".join("?" * len(kinds))
        value = scalar(
            self._conn,
            f"SELECT max(seq) FROM team_applied WHERE item_key = ? AND kind IN ({marks})",
            (item_key, *kinds),
        )
        return None if value is None else int(value)

    def applied_count(self) -> int:
        return int(scalar(self._conn, "SELECT count(*) FROM team_applied"))

    def digest(self) -> tuple[int, str]:
        """``(count, sha256)`` over the uids this copy holds: equal to the server's when it holds the whole log."""
        return uid_digest(str(uid) for (uid,) in self._conn.execute("SELECT uid FROM team_applied"))

    # ------------------------------------------------------------------ resolving keys
    def account_ids(self) -> dict[str, int]:
        """Local account ids by account key."""
        return {
            str(r["key"]): int(r["id"])
            for r in fetch_all(self._conn, f"SELECT a.id, {_ACCOUNT_KEY_SQL} AS key FROM accounts a")
        }

    def mention_ids(self, item_keys: Iterable[str]) -> dict[str, int]:
        """Local mention ids of the items among ``item_keys`` stored here."""
        accounts = self.account_ids()
        wanted: dict[int, list[tuple[str, str]]] = {}
        for key in dict.fromkeys(item_keys):
            account, sep, external_id = key.rpartition("#")
            if sep and account in accounts:
                wanted.setdefault(accounts[account], []).append((external_id, key))
        out: dict[str, int] = {}
        for account_id, pairs in wanted.items():
            by_ext = dict(pairs)
            for row in fetch_in(
                self._conn,
                lambda m: f"SELECT id, external_id FROM mentions WHERE account_id = ? AND external_id IN ({m})",
                list(by_ext),
                before=(account_id,),
            ):
                out[by_ext[str(row["external_id"])]] = int(row["id"])
        return out

    def known_external_ids(self, account_id: int, external_ids: Iterable[str]) -> set[str]:
        """The ids among ``external_ids`` this copy has as a message or a sent reply of account ``account_id``."""
        wanted = list(dict.fromkeys(external_ids))
        found = {
            str(r["external_id"])
            for r in fetch_in(
                self._conn,
                lambda m: f"SELECT external_id FROM mentions WHERE account_id = ? AND external_id IN ({m})",
                wanted,
                before=(account_id,),
            )
        }
        found.update(
            str(r["external_id"])
            for r in fetch_in(
                self._conn,
                lambda m: (
                    "SELECT r.external_id FROM replies r JOIN mentions h ON h.id = r.mention_id "
                    f"WHERE h.account_id = ? AND r.external_id IN ({m})"
                ),
                wanted,
                before=(account_id,),
            )
        )
        return found

    def item_keys(self, mention_ids: Iterable[int]) -> dict[int, str]:
        """Item keys of local mentions."""
        return {
            int(r["id"]): str(r["key"])
            for r in fetch_in(
                self._conn,
                lambda m: (
                    f"SELECT m.id, {_ACCOUNT_KEY_SQL} || '#' || m.external_id AS key FROM mentions m "
                    f"JOIN accounts a ON a.id = m.account_id WHERE m.id IN ({m})"
                ),
                mention_ids,
            )
        }

    def head_of(self, mention_id: int) -> int | None:
        value = scalar(self._conn, "SELECT coalesce(head_id, id) FROM mentions WHERE id = ?", (mention_id,))
        return None if value is None else int(value)

    # ------------------------------------------------------------------ applying
    def record_event(
        self, *, at: int, actor: str, kind: str, mention_id: int | None, data: Mapping[str, Any], remote_uid: str
    ) -> int:
        """A local event written for team event ``remote_uid`` (the item history shows it; it is never pushed)."""
        with self._db.atomic():
            event_id = write_event(self._conn, at=at, actor=actor, kind=kind, mention_id=mention_id, data=data)
            self._conn.execute("UPDATE events SET remote_uid = ? WHERE id = ?", (remote_uid, event_id))
        return event_id

    def mark_derived(self, after_event_id: int, remote_uid: str) -> int:
        """Events written after ``after_event_id`` with no team uid are consequences of ``remote_uid`` (a
        repository or the SLA engine reacting to a colleague's change): they carry its uid and are never pushed.

        Returns:
            How many events were marked.
        """
        with self._db.atomic():
            cur = self._conn.execute(
                "UPDATE events SET remote_uid = ? WHERE id > ? AND remote_uid IS NULL", (remote_uid, after_event_id)
            )
        return int(cur.rowcount)

    def latest_event(self, mention_id: int, kind: str) -> LocalEventRow | None:
        """The newest local event of ``kind`` about item ``mention_id`` (own or applied)."""
        row = fetch_one(
            self._conn,
            "SELECT id, at, actor, remote_uid, data FROM events WHERE mention_id = ? AND kind = ? "
            "ORDER BY id DESC LIMIT 1",
            (mention_id, kind),
        )
        return None if row is None else self._local_event(row)

    def latest_own_event(self, mention_id: int, kind: str) -> LocalEventRow | None:
        """The newest of this copy's own events of ``kind`` about item ``mention_id``."""
        row = fetch_one(
            self._conn,
            "SELECT id, at, actor, remote_uid, data FROM events WHERE mention_id = ? AND kind = ? "
            "AND remote_uid IS NULL ORDER BY id DESC LIMIT 1",
            (mention_id, kind),
        )
        return None if row is None else self._local_event(row)

    @staticmethod
    def _local_event(row: sqlite3.Row) -> LocalEventRow:
        uid = row["remote_uid"]
        return LocalEventRow(
            int(row["id"]), int(row["at"]), str(row["actor"]), None if uid is None else str(uid), _data(row["data"])
        )

    def own_replies_answering(self, mention_id: int, at: int, *, other_key: str) -> list[dict[str, Any]]:
        """This copy's own sent replies to item ``mention_id`` that answer the same customer message as a reply
        sent at ``at`` (sent after the customer's latest message up to ``at``): two members answered it.

        Replies stored for a colleague's reply or a post seen on the channel are not "own" (their events carry a
        team uid, or they were found, not sent).
        """
        last = scalar(
            self._conn,
            "SELECT max(posted_at) FROM mentions WHERE (id = ? OR head_id = ?) AND posted_at <= ?",
            (mention_id, mention_id, at),
        )
        rows = fetch_all(
            self._conn,
            "SELECT r.idempotency_key, r.sent_at, r.text FROM replies r WHERE r.mention_id = ? AND r.state = ? "
            "AND r.idempotency_key <> ? AND r.sent_at >= ? AND EXISTS (SELECT 1 FROM events e WHERE "
            "e.mention_id = r.mention_id AND e.kind = 'reply_sent' AND e.remote_uid IS NULL "
            "AND json_extract(e.data, '$.reply_id') = r.id)",
            (mention_id, ReplyState.SENT.value, other_key, int(last or 0)),
        )
        return [{"reply_key": str(r["idempotency_key"]), "sent_at": r["sent_at"], "text": str(r["text"])} for r in rows]

    def has_reply(self, reply_key: str) -> bool:
        return scalar(self._conn, "SELECT 1 FROM replies WHERE idempotency_key = ?", (reply_key,)) is not None

    @says("Could not record a colleague's reply")
    def record_colleague_reply(
        self,
        *,
        mention_id: int,
        reply_key: str,
        text: str,
        purpose: str,
        external_id: str | None,
        url: str,
        sent_at: int,
        holding_until: int | None,
        actor: str,
        remote_uid: str,
    ) -> bool:
        """A reply a colleague sent, stored as sent (so the thread shows it and answers to it join the thread).

        One sent row per brand post, as ``ReplyRepo.mark_sent`` keeps for this copy's own: when this copy found
        the same post on the channel first (a seen reply, key ``seen:<account>:<external id>``), that row goes and
        the colleague's reply (their key, author and text) stands in its place; its ``reply_seen`` event stays in
        the append-only log.

        Returns:
            False when this copy already has the reply (its idempotency key): nothing was written.
        """
        with self._db.atomic():
            if self.has_reply(reply_key):
                return False
            if external_id:
                self._conn.execute(
                    "DELETE FROM replies WHERE idempotency_key = (SELECT ? || account_id || ':' || ? "
                    "FROM mentions WHERE id = ?)",
                    (SEEN_KEY_PREFIX, external_id, mention_id),
                )
            cur = self._conn.execute(
                "INSERT INTO replies (mention_id, target_id, text, purpose, idempotency_key, state, external_id, url, "
                "created_at, queued_at, sent_at, holding_until) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (idempotency_key) DO NOTHING",
                (mention_id, mention_id, text, purpose, reply_key, ReplyState.SENT.value, external_id, url, sent_at,
                 sent_at, sent_at, holding_until),
            )  # fmt: skip
            if not cur.rowcount:
                return False
            reply_id = int(cur.lastrowid or 0)
            data = {"reply_id": reply_id, "purpose": purpose, "external_id": external_id, "reply_key": reply_key}
            self.record_event(at=sent_at, actor=actor, kind="reply_sent", mention_id=mention_id, data=data,
                              remote_uid=remote_uid)  # fmt: skip
        return True

    # ------------------------------------------------------------------ parked
    def park(self, events: Iterable[SharedEvent]) -> None:
        """Keep events whose item has not arrived yet; :meth:`parked_for` gives them back when it does."""
        with self._db.atomic():
            self._conn.executemany(
                "INSERT INTO team_parked (uid, seq, item_key, author, at, kind, data) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT (uid) DO NOTHING",
                [(e.uid, e.seq, e.item_key, e.author, e.at, e.kind, event_json(e.data)) for e in events if e.item_key],
            )

    def parked_for(self, item_keys: Iterable[str]) -> list[SharedEvent]:
        """Parked events of ``item_keys``, removed from the park, in server order."""
        rows = list(
            fetch_in(
                self._conn,
                lambda m: f"SELECT uid, seq, item_key, author, at, kind, data FROM team_parked WHERE item_key IN ({m})",
                item_keys,
            )
        )
        if not rows:
            return []
        with self._db.atomic():
            for chunk in chunked([str(r["uid"]) for r in rows]):
                self._conn.execute(f"DELETE FROM team_parked WHERE uid IN ({','.join('?' * len(chunk))})", chunk)
        events = [
            SharedEvent(int(r["seq"]), str(r["uid"]), str(r["author"]), int(r["at"]), str(r["kind"]),
                        str(r["item_key"]), _data(r["data"]))
            for r in rows
        ]  # fmt: skip
        return sorted(events, key=lambda e: e.seq)

    def parked_count(self) -> int:
        return int(scalar(self._conn, "SELECT count(*) FROM team_parked"))

    # ------------------------------------------------------------------ claims mirror
    def replace_claims(self, claims: Iterable[tuple[str, str, float, float]]) -> list[int]:
        """Make the mirror the server's live claims ((item key, holder, claimed at, expires at)).

        Returns:
            The local mention ids whose claim appeared, changed or went (for the window to repaint).
        """
        rows = list(claims)
        ids = self.mention_ids(key for key, *_ in rows)
        # BEGIN IMMEDIATE: a deferred transaction that reads first could not upgrade to write while the applier's
        # worker connection committed meanwhile ("database is locked" at once, the busy timeout never applies).
        with self.transaction():
            before = {
                str(r["item_key"]): (r["mention_id"], str(r["holder"]), float(r["expires_at"]))
                for r in fetch_all(self._conn, "SELECT item_key, mention_id, holder, expires_at FROM team_claims")
            }
            self._conn.execute("DELETE FROM team_claims")
            self._conn.executemany(
                "INSERT INTO team_claims (item_key, mention_id, holder, claimed_at, expires_at) VALUES (?,?,?,?,?)",
                [(key, ids.get(key), holder, claimed, expires) for key, holder, claimed, expires in rows],
            )
        after = {key: (ids.get(key), holder, expires) for key, holder, _claimed, expires in rows}
        changed: set[int] = set()
        for key in set(before) | set(after):
            if before.get(key) != after.get(key):
                for side in (before.get(key), after.get(key)):
                    if side is not None and side[0] is not None:
                        changed.add(int(side[0]))
        return sorted(changed)

    def claims(self) -> list[ClaimMirrorRow]:
        rows = fetch_all(self._conn, "SELECT item_key, mention_id, holder, claimed_at, expires_at FROM team_claims")
        return [
            ClaimMirrorRow(str(r["item_key"]), None if r["mention_id"] is None else int(r["mention_id"]),
                           str(r["holder"]), float(r["claimed_at"]), float(r["expires_at"]))
            for r in rows
        ]  # fmt: skip

    def relink_claims(self) -> None:
        """Fill the mention id of mirrored claims whose item arrived after the claim was mirrored."""
        missing = [str(k) for (k,) in self._conn.execute("SELECT item_key FROM team_claims WHERE mention_id IS NULL")]
        if not missing:
            return
        ids = self.mention_ids(missing)
        with self._db.atomic():
            self._conn.executemany(
                "UPDATE team_claims SET mention_id = ? WHERE item_key = ?", [(i, k) for k, i in ids.items()]
            )

    # ------------------------------------------------------------------ conflicts
    def add_conflict(
        self,
        *,
        at: int,
        mention_id: int | None,
        item_key: str | None,
        kind: str,
        ours: Mapping[str, Any],
        theirs: Mapping[str, Any],
        winner: str,
        reason: str,
    ) -> int:
        """Record an own change and a colleague's that could not both stand (shown to the agent)."""
        with self._db.atomic():
            cur = self._conn.execute(
                "INSERT INTO team_conflicts (at, mention_id, item_key, kind, ours, theirs, winner, reason) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (at, mention_id, item_key, kind, event_json(ours), event_json(theirs), winner, reason),
            )
        return int(cur.lastrowid or 0)

    def conflicts(self, *, unseen_only: bool = False) -> list[ConflictRow]:
        where = "WHERE seen = 0" if unseen_only else ""
        rows = fetch_all(
            self._conn,
            "SELECT id, at, mention_id, item_key, kind, ours, theirs, winner, reason, seen FROM team_conflicts "
            f"{where} ORDER BY id",
        )
        return [
            ConflictRow(int(r["id"]), int(r["at"]), None if r["mention_id"] is None else int(r["mention_id"]),
                        None if r["item_key"] is None else str(r["item_key"]), str(r["kind"]), _data(r["ours"]),
                        _data(r["theirs"]), str(r["winner"]), str(r["reason"]), bool(r["seen"]))
            for r in rows
        ]  # fmt: skip

    def conflict_count(self, *, unseen_only: bool = True) -> int:
        where = " WHERE seen = 0" if unseen_only else ""
        return int(scalar(self._conn, f"SELECT count(*) FROM team_conflicts{where}"))

    def mark_conflicts_seen(self, ids: Sequence[int]) -> None:
        with self._db.atomic():
            self._conn.executemany("UPDATE team_conflicts SET seen = 1 WHERE id = ?", [(i,) for i in ids])
