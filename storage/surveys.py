"""Net Easy surveys: who was asked when, the answers read back, and the figures' raw records."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from storage.driver import fetch_all, fetch_in, fetch_one, named, qmarks, repository, says, scalar
from storage.errors import StorageError
from storage.events import write_event
from storage.rows import MentionStatus

#: Surveys whose outbox reply failed were never delivered: they do not count as sent, nor for fatigue.
_DELIVERED = (
    "(s.reply_id IS NULL OR NOT EXISTS (SELECT 1 FROM replies r WHERE r.id = s.reply_id AND r.state = 'failed'))"
)
_COLUMNS = (
    "s.id, s.mention_id, s.customer_id, s.reply_id, s.sent_at, s.question_version, s.scale_min, s.scale_max, "
    "s.answer_text, s.score, s.comment, s.needs_review, s.parsed_at"
)


@dataclass(frozen=True, slots=True)
class SurveyRow:
    """One survey. Unanswered: ``parsed_at`` is None. Flagged: ``needs_review`` with no score yet."""

    id: int
    mention_id: int
    customer_id: int | None
    reply_id: int | None
    sent_at: int
    question_version: str
    scale_min: int
    scale_max: int
    answer_text: str | None
    score: int | None
    comment: str
    needs_review: bool
    parsed_at: int | None

    @property
    def answered(self) -> bool:
        return self.parsed_at is not None


@dataclass(frozen=True, slots=True)
class CustomerMessage:
    """A message the surveyed customer wrote in the surveyed thread."""

    id: int
    head_id: int
    posted_at: int
    text: str


@dataclass(frozen=True, slots=True)
class SurveyFact:
    """A sent survey with what the figures group by (channel, agent, shift, templates used in the thread)."""

    survey_id: int
    sent_at: int
    score: int | None
    channel: str
    agent: str
    shift_id: int | None
    template_ids: tuple[int, ...]


def _survey(row: sqlite3.Row) -> SurveyRow:
    return SurveyRow(
        id=int(row["id"]),
        mention_id=int(row["mention_id"]),
        customer_id=None if row["customer_id"] is None else int(row["customer_id"]),
        reply_id=None if row["reply_id"] is None else int(row["reply_id"]),
        sent_at=int(row["sent_at"] or 0),
        question_version=str(row["question_version"]),
        scale_min=int(row["scale_min"]),
        scale_max=int(row["scale_max"]),
        answer_text=None if row["answer_text"] is None else str(row["answer_text"]),
        score=None if row["score"] is None else int(row["score"]),
        comment=str(row["comment"]),
        needs_review=bool(row["needs_review"]),
        parsed_at=None if row["parsed_at"] is None else int(row["parsed_at"]),
    )


@repository
class SurveyRepo:
    """Reads and writes ``surveys``; each change and its event are committed together."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.conn

    def _event(self, *, at: int, actor: str, mention_id: int, kind: str, **data: Any) -> None:
        write_event(self._conn, at=at, actor=actor, kind=kind, mention_id=mention_id, data=data)

    # ------------------------------------------------------------------ writes
    @says("Could not record the survey for item {mention_id}")
    def create(
        self,
        *,
        mention_id: int,
        customer_id: int | None,
        reply_id: int | None,
        sent_at: int,
        question_version: str,
        actor: str,
        scale: tuple[int, int] = (1, 7),
    ) -> SurveyRow:
        """Record a survey sent through the outbox, its ``survey_sent`` event and the customer's last survey time.

        Raises:
            StorageError: nothing was written.
        """
        with self._db.atomic():
            cur = self._conn.execute(
                "INSERT INTO surveys (mention_id, customer_id, reply_id, sent_at, question_version, scale_min, "
                "scale_max) VALUES (?,?,?,?,?,?,?)",
                (mention_id, customer_id, reply_id, sent_at, question_version, *scale),
            )
            survey_id = int(cur.lastrowid or 0)
            if customer_id is not None:
                self._conn.execute(
                    "UPDATE customers SET last_survey_sent_at = max(coalesce(last_survey_sent_at, 0), ?) WHERE id = ?",
                    (sent_at, customer_id),
                )
            self._event(at=sent_at, actor=actor, mention_id=mention_id, kind="survey_sent", survey_id=survey_id)
        return self.get(survey_id)

    @says("Could not record the answer to survey {survey_id}")
    def record_answer(
        self,
        survey_id: int,
        *,
        message: CustomerMessage,
        score: int | None,
        comment: str,
        needs_review: bool,
        at: int,
        actor: str,
        settle: bool,
        question: bool = False,
    ) -> tuple[SurveyRow, MentionStatus | None]:
        """Store what the customer's message answered, in one transaction.

        With ``settle`` (the message was only an answer), a resolved, community-answered or waiting item that
        the answer reopened goes back to that status and the clocks the reopening started stop again: an answer
        to a survey needs no reply. ``question`` marks an answer that also asks something new; the event says
        so, and the SLA replay then treats the message as an ordinary follow-up.

        Returns:
            The survey, and the status the item went back to (None when it was left as it was).

        Raises:
            StorageError: nothing was written.
        """
        survey = self.get(survey_id)
        with self._db.atomic():
            self._conn.execute(
                "UPDATE surveys SET answer_text = ?, score = ?, comment = ?, needs_review = ?, parsed_at = ? "
                "WHERE id = ?",
                (message.text, score, comment, int(needs_review), at, survey_id),
            )
            data: dict[str, Any] = {"survey_id": survey_id, "score": score, "message": message.id}
            if needs_review:
                data["needs_review"] = True
            if question:
                data["question"] = True
            self._event(at=message.posted_at, actor=actor, mention_id=survey.mention_id, kind="survey_answered", **data)
            restored = self._settle(survey.mention_id, message, actor) if settle else None
        return self.get(survey_id), restored

    def _settle(self, head_id: int, message: CustomerMessage, actor: str) -> MentionStatus | None:
        """Undo the reopening an answer caused; returns the status restored (None when nothing changed)."""
        conn = self._conn
        reopened = fetch_one(
            conn,
            "SELECT data, at FROM events WHERE mention_id = ? AND kind = 'reopened' ORDER BY id DESC LIMIT 1",
            (head_id,),
        )
        status = scalar(conn, "SELECT status FROM mentions WHERE id = ?", (head_id,))
        by_answer = reopened is not None and json.loads(reopened["data"]).get("by_message") == message.id
        if reopened is None or not by_answer or status != MentionStatus.OPEN.value:
            return None
        previous = self._status_before_reopen(head_id)
        if previous not in (MentionStatus.RESOLVED, MentionStatus.COMMUNITY, MentionStatus.WAITING):
            return None
        self._close(head_id, MentionStatus.OPEN, previous, message.posted_at, actor, since=int(reopened["at"]))
        return previous

    def _close(
        self, head_id: int, old: MentionStatus, new: MentionStatus, at: int, actor: str, *, since: int | None = None
    ) -> None:
        """Set the status back; with ``since`` (undoing a reopening) only the clocks started since then stop."""
        conn = self._conn
        conn.execute("UPDATE mentions SET status = ? WHERE id = ?", (new.value, head_id))
        self._event(
            at=at, actor=actor, mention_id=head_id, kind="status_changed",
            **{"from": old.value, "to": new.value, "reason": "survey answer"},
        )  # fmt: skip
        if since is not None:
            # The answer's reopening never happened as far as the SLA goes (sla_engine.replay agrees): the
            # clocks it started are withdrawn, not met, and the ones paused for a waiting item stay paused.
            conn.execute(
                "UPDATE deadlines SET cancelled_at = ? WHERE mention_id = ? AND started_at >= ? AND met_at IS NULL "
                "AND cancelled_at IS NULL",
                (at, head_id, since),
            )
        else:
            # Closing, as the SLA rules close a resolved item: resolution met, every other clock stopped.
            conn.execute(
                "UPDATE deadlines SET met_at = ? WHERE mention_id = ? AND kind = 'resolution' AND met_at IS NULL "
                "AND cancelled_at IS NULL",
                (at, head_id),
            )
            conn.execute(
                "UPDATE deadlines SET cancelled_at = ?, paused_at = NULL WHERE mention_id = ? AND met_at IS NULL "
                "AND cancelled_at IS NULL",
                (at, head_id),
            )
        conn.execute(
            "UPDATE mentions SET (due_at, warn_at) = (SELECT due_at, warn_at FROM deadlines WHERE mention_id = ? "
            "AND met_at IS NULL AND cancelled_at IS NULL AND paused_at IS NULL ORDER BY due_at LIMIT 1) WHERE id = ?",
            (head_id, head_id),
        )

    @says("Could not resolve item {head_id}")
    def resolve_answer_item(self, head_id: int, *, at: int, actor: str) -> MentionStatus | None:
        """Resolve a new item that only held a survey answer (a fresh DM with "2"); returns its old status.

        Raises:
            StorageError: nothing was written.
        """
        status = scalar(self._conn, "SELECT status FROM mentions WHERE id = ? AND head_id IS NULL", (head_id,))
        if status not in (MentionStatus.NEW.value, MentionStatus.OPEN.value):
            return None
        old = MentionStatus(status)
        with self._db.atomic():
            self._close(head_id, old, MentionStatus.RESOLVED, at, actor)
        return old

    def awaiting_for_customers(self, customer_ids: Iterable[int], *, sent_after: int) -> list[SurveyRow]:
        """Unanswered, delivered surveys of these customers sent after ``sent_after``, newest first."""
        return self._awaiting("s.customer_id", customer_ids, sent_after, "s.sent_at DESC, s.id DESC")

    def _status_before_reopen(self, head_id: int) -> MentionStatus:
        """The status the item had before the customer's message reopened it (resolved unless logged otherwise)."""
        for (data,) in named(self._conn).execute(
            "SELECT data FROM events WHERE mention_id = ? AND kind = 'status_changed' ORDER BY id DESC", (head_id,)
        ):
            target = json.loads(data).get("to")
            if target in (MentionStatus.RESOLVED.value, MentionStatus.WAITING.value, MentionStatus.COMMUNITY.value):
                return MentionStatus(target)
            break
        return MentionStatus.RESOLVED

    @says("Could not score survey {survey_id}")
    def score_manually(self, survey_id: int, score: int | None, *, at: int, actor: str) -> SurveyRow:
        """The agent's score for a flagged answer (None: "this was not an answer").

        Raises:
            ValueError: a score outside the survey's scale.
            StorageError: nothing was written.
        """
        survey = self.get(survey_id)
        if score is not None and not survey.scale_min <= score <= survey.scale_max:
            raise ValueError(f"a score is {survey.scale_min}–{survey.scale_max}, not {score}")
        with self._db.atomic():
            self._conn.execute(
                "UPDATE surveys SET score = ?, needs_review = 0, parsed_at = coalesce(parsed_at, ?) WHERE id = ?",
                (score, at, survey_id),
            )
            self._event(
                at=at, actor=actor, mention_id=survey.mention_id, kind="survey_answered",
                survey_id=survey_id, score=score, manual=True,
            )  # fmt: skip
        return self.get(survey_id)

    # ------------------------------------------------------------------ reads
    def get(self, survey_id: int) -> SurveyRow:
        row = fetch_one(self._conn, f"SELECT {_COLUMNS} FROM surveys s WHERE s.id = ?", (survey_id,))
        if row is None:
            raise StorageError(f"There is no survey {survey_id}.")
        return _survey(row)

    def _latest(self, where: str, order: str, value: int) -> SurveyRow | None:
        row = fetch_one(
            self._conn,
            f"SELECT {_COLUMNS} FROM surveys s WHERE {where} ORDER BY {order} DESC, s.id DESC LIMIT 1",
            (value,),
        )
        return None if row is None else _survey(row)

    def for_mention(self, mention_id: int) -> SurveyRow | None:
        """The latest delivered (or pending) survey of this conversation."""
        return self._latest(f"s.mention_id = ? AND {_DELIVERED}", "s.sent_at", mention_id)

    def last_for_customer(self, customer_id: int) -> SurveyRow | None:
        """The customer's latest delivered (or pending) survey, in any conversation."""
        return self._latest(f"s.customer_id = ? AND {_DELIVERED}", "s.sent_at", customer_id)

    def last_answer(self, customer_id: int) -> SurveyRow | None:
        """The customer's latest answered survey (scored or flagged)."""
        return self._latest("s.customer_id = ? AND s.parsed_at IS NOT NULL", "s.parsed_at", customer_id)

    def needing_review(self) -> list[SurveyRow]:
        rows = fetch_all(self._conn, f"SELECT {_COLUMNS} FROM surveys s WHERE s.needs_review = 1 ORDER BY s.parsed_at")
        return [_survey(r) for r in rows]

    def awaiting_answer(self, head_ids: Iterable[int], *, sent_after: int) -> list[SurveyRow]:
        """Unanswered, delivered surveys of these conversations sent after ``sent_after``."""
        return self._awaiting("s.mention_id", head_ids, sent_after, "s.id")

    def _awaiting(self, column: str, ids: Iterable[int], sent_after: int, order: str) -> list[SurveyRow]:
        """Unanswered, delivered surveys whose ``column`` is one of ``ids``, sent after ``sent_after``, in
        ``order`` within each chunk of ids."""
        return [
            _survey(r)
            for r in fetch_in(
                self._conn,
                lambda marks: (
                    f"SELECT {_COLUMNS} FROM surveys s WHERE {column} IN ({marks}) "
                    f"AND s.parsed_at IS NULL AND s.sent_at > ? AND {_DELIVERED} ORDER BY {order}"
                ),
                dict.fromkeys(ids),
                after=(sent_after,),
            )
        ]

    def customer_messages(self, head_id: int, customer_id: int, *, after: int, until: int) -> list[CustomerMessage]:
        """The surveyed customer's messages in this thread posted in ``(after, until]``, oldest first."""
        rows = fetch_all(
            self._conn,
            "SELECT id, coalesce(head_id, id) AS head_id, posted_at, text FROM mentions WHERE (id = ? OR head_id = ?) "
            "AND customer_id = ? AND posted_at >= ? AND posted_at <= ? AND id != ? ORDER BY posted_at, id",
            (head_id, head_id, customer_id, after, until, head_id),
        )
        return [
            CustomerMessage(
                id=int(r["id"]), head_id=int(r["head_id"]), posted_at=int(r["posted_at"]), text=str(r["text"])
            )
            for r in rows
        ]

    def has_sent_reply(self, mention_id: int) -> bool:
        """Whether the brand has answered this conversation (a sent reply other than a survey)."""
        row = fetch_one(
            self._conn,
            "SELECT 1 FROM replies WHERE mention_id IN (SELECT id FROM mentions WHERE id = ? OR head_id = ?) "
            "AND state = 'sent' AND purpose != 'survey' LIMIT 1",
            (mention_id, mention_id),
        )
        return row is not None

    def facts(self, *, since: int, until: int) -> list[SurveyFact]:
        """Every delivered survey sent in ``[since, until)`` with its channel, agent, shift and templates."""
        rows = fetch_all(
            self._conn,
            f"SELECT s.id, s.sent_at, s.score, a.kind AS channel, "
            "(SELECT e.actor FROM events e WHERE e.mention_id = s.mention_id AND e.kind = 'survey_sent' "
            " AND json_extract(e.data, '$.survey_id') = s.id LIMIT 1) AS agent, "
            "(SELECT sh.id FROM shifts sh WHERE sh.started_at <= s.sent_at "
            " AND (sh.ended_at IS NULL OR sh.ended_at >= s.sent_at) ORDER BY sh.started_at DESC LIMIT 1) AS shift_id, "
            "(SELECT group_concat(DISTINCT r.template_id) FROM replies r JOIN mentions t ON t.id = r.mention_id "
            " WHERE (t.id = s.mention_id OR t.head_id = s.mention_id) AND r.template_id IS NOT NULL) AS template_ids "
            "FROM surveys s JOIN mentions m ON m.id = s.mention_id JOIN accounts a ON a.id = m.account_id "
            f"WHERE s.sent_at >= ? AND s.sent_at < ? AND {_DELIVERED} ORDER BY s.sent_at, s.id",
            (since, until),
        )
        return [
            SurveyFact(
                survey_id=int(r["id"]),
                sent_at=int(r["sent_at"]),
                score=None if r["score"] is None else int(r["score"]),
                channel=str(r["channel"]),
                agent=str(r["agent"] or ""),
                shift_id=None if r["shift_id"] is None else int(r["shift_id"]),
                template_ids=tuple(sorted(int(t) for t in str(r["template_ids"]).split(",")))
                if r["template_ids"]
                else (),
            )
            for r in rows
        ]

    def template_names(self, ids: Iterable[int]) -> dict[int, str]:
        """Template names by id (for the per-template figures)."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        rows = fetch_all(
            self._conn, f"SELECT id, name FROM templates WHERE id IN ({qmarks(len(wanted))})", tuple(wanted)
        )
        return {int(r["id"]): str(r["name"]) for r in rows}

    def shift_labels(self, ids: Iterable[int]) -> dict[int, tuple[str, int]]:
        """``(agent name, started_at)`` of these shifts."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        rows = fetch_all(
            self._conn,
            f"SELECT id, agent_name, started_at FROM shifts WHERE id IN ({qmarks(len(wanted))})",
            tuple(wanted),
        )
        return {int(r["id"]): (str(r["agent_name"]), int(r["started_at"])) for r in rows}
