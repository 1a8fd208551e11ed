"""Net Easy surveys: the fatigue guard, sending through the outbox, reading answers after each sync, scoring."""

from __future__ import annotations

import hashlib
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from console.model import SyncReport
from console.ports import Clock
from console.surveys.answers import SCALE_MAX, SCALE_MIN, AnswerKind, parse_answer
from console.surveys.net_easy import (
    MIN_N,
    NetEasy,
    SurveyRecord,
    Trend,
    TrendPoint,
    by_agent,
    by_channel,
    by_shift,
    by_template,
    net_easy,
    series,
    trend,
)
from storage.errors import StorageError
from storage.mentions import MentionRepo
from storage.rows import MentionKind, MentionRow, MentionStatus
from storage.settings import (
    AGENT_NAME,
    NET_EASY_MIN_N,
    SURVEY_CUSTOMER_DAYS,
    SURVEY_PROMPT_AFTER_RESOLVE,
    SURVEY_QUESTION,
    SettingsRepo,
)
from storage.surveys import CustomerMessage, SurveyFact, SurveyRepo, SurveyRow

__all__ = [
    "ANSWER_WINDOW",
    "MIN_GAP",
    "MIN_N",
    "PRIVATE_VISIBILITY",
    "GroupFigure",
    "Grouping",
    "NetEasyReport",
    "Refusal",
    "SendSurvey",
    "SurveyCheck",
    "SurveyRefused",
    "SurveyRow",
    "SurveyService",
    "SurveyState",
    "question_version",
]

log = logging.getLogger(__name__)

#: An answer counts only within 7 days of the survey (metrics.md, recommended definitions §3).
ANSWER_WINDOW: Final = 7 * 24 * 3600
#: Never two surveys to the same customer within 24 h, whatever the setting (X Feedback API, Promoter.io floor).
MIN_GAP: Final = 24 * 3600
DAY: Final = 24 * 3600
#: Surveys looked at when a sync brings messages: the answer's own post time decides whether it counts, so a
#: sync after days offline still reads answers written in time.
LOOKBACK: Final = 30 * DAY
#: How each channel asks privately; a channel missing here has no private path and is asked in the thread.
PRIVATE_VISIBILITY: Final[dict[str, str]] = {
    "mastodon": "direct",
    "bluesky": "direct",
    "discourse": "direct",
}

#: The outbox port: (mention id, text, visibility or None for "the thread's own") -> reply id.
SendSurvey = Callable[[int, str, str | None], Awaitable[int] | int]


class Refusal(StrEnum):
    """Why the fatigue guard refused a survey."""

    NOT_FOUND = "not_found"
    SPAM = "spam"
    COMMUNITY = "community"
    WAITING = "waiting"
    UNANSWERED = "unanswered"
    ALREADY_SURVEYED = "already_surveyed"
    CUSTOMER_RECENT = "customer_recent"
    CUSTOMER_24H = "customer_24h"


@dataclass(frozen=True, slots=True)
class SurveyCheck:
    """Whether a survey may go out now, and how.

    ``reason`` is a sentence for the agent when refused. ``private`` is False for channels with no private
    path (the survey is posted in the thread); ``route`` says so in words for the button.
    """

    allowed: bool
    refusal: Refusal | None
    reason: str
    private: bool
    route: str


class SurveyRefused(Exception):
    """The fatigue guard said no; ``check.reason`` says why."""

    def __init__(self, check: SurveyCheck) -> None:
        super().__init__(check.reason)
        self.check = check


@dataclass(frozen=True, slots=True)
class SurveyState:
    """What the conversation area shows: this conversation's survey, the customer's last answer, the guard."""

    mention_id: int
    customer: str  # the author's handle, without "@"
    survey: SurveyRow | None
    last_answer: SurveyRow | None
    check: SurveyCheck
    expired: bool


class Grouping(StrEnum):
    """How the Net Easy report splits the figures."""

    CHANNEL = "channel"
    AGENT = "agent"
    SHIFT = "shift"
    TEMPLATE = "template"


@dataclass(frozen=True, slots=True)
class GroupFigure:
    """One row of a grouping: a readable label and its figure."""

    label: str
    figure: NetEasy


@dataclass(frozen=True, slots=True)
class NetEasyReport:
    """Net Easy over a period, against the period of the same length before it, with a trend and groupings.

    ``trend`` is UP or DOWN only when the two-sample test says the change is real.
    """

    since: int
    until: int
    overall: NetEasy
    previous: NetEasy
    trend: Trend
    points: tuple[TrendPoint, ...]
    groups: dict[Grouping, tuple[GroupFigure, ...]]


#: Both anchors must be in the question: "1 … easy" and "7 … difficult/hard" (either order of words).
_ANCHOR_LOW = re.compile(r"\b1\b[^0-9]{0,30}\beas(?:y|iest)\b|\beas(?:y|iest)\b[^0-9]{0,30}\b1\b", re.IGNORECASE)
_ANCHOR_HIGH = re.compile(
    r"\b7\b[^0-9]{0,30}\b(?:difficult|hard)\w*|\b(?:difficult|hard)\w*[^0-9]{0,30}\b7\b", re.IGNORECASE
)


def question_version(text: str) -> str:
    """A short, stable version of the question's wording, stored with every survey (edits change it)."""
    return "q-" + hashlib.sha256(text.strip().encode()).hexdigest()[:10]


def _days(seconds: float) -> str:
    days = int(seconds // DAY)
    if days >= 1:
        return f"{days} day{'s' if days != 1 else ''}"
    hours = max(1, int(seconds // 3600))
    return f"{hours} hour{'s' if hours != 1 else ''}"


class SurveyService:
    """Sends Net Easy surveys and reads the answers back.

    Args:
        surveys: the survey repository.
        mentions: for the conversation and its customer.
        settings: question, per-customer interval, prompt-after-resolve, minimum n.
        clock: the time.
        send: the outbox port; runtime wires it to ``Outbox.queue(..., purpose="survey")``.
        on_status_change: told when an answer puts a reopened item back to resolved (``SlaEngine.on_status_change``).
        on_answered: told which conversations got an answer logged, so their deadlines are replayed
            (``SlaEngine.recompute``): a bare answer must not leave a next-response clock running.
    """

    def __init__(
        self,
        surveys: SurveyRepo,
        mentions: MentionRepo,
        settings: SettingsRepo,
        clock: Clock,
        send: SendSurvey,
        *,
        on_status_change: Callable[[int, MentionStatus, MentionStatus, int], None] | None = None,
        on_answered: Callable[[list[int]], object] | None = None,
    ) -> None:
        self._surveys = surveys
        self._mentions = mentions
        self._settings = settings
        self._clock = clock
        self._send = send
        self._on_status_change = on_status_change
        self._on_answered = on_answered
        self._sending: set[int] = set()
        self._listeners: list[Callable[[list[SurveyRow]], None]] = []

    # ------------------------------------------------------------------ settings
    @property
    def question(self) -> str:
        return self._settings.get(SURVEY_QUESTION).strip() or SURVEY_QUESTION.default

    def set_question(self, text: str) -> None:
        """Change the question (a new ``question_version`` from now on).

        Raises:
            ValueError: the text does not state both ends of the scale (customers mix up the direction
                otherwise, metrics.md §2), or is empty.
        """
        text = " ".join(text.split())
        if not text:
            raise ValueError("The question cannot be empty.")
        if not (_ANCHOR_LOW.search(text) and _ANCHOR_HIGH.search(text)):
            raise ValueError(
                "The question must state both ends of the scale, e.g. 1 (extremely easy) and 7 (extremely difficult)."
            )
        self._settings.set(SURVEY_QUESTION, text)

    def reset_question(self) -> None:
        """Back to BT's wording with both anchors."""
        self._settings.set(SURVEY_QUESTION, SURVEY_QUESTION.default)

    @property
    def customer_days(self) -> int:
        """Days between two surveys to the same customer (0–180)."""
        return self._settings.get(SURVEY_CUSTOMER_DAYS)

    def set_customer_days(self, days: int) -> None:
        """Raises ValueError outside 0–180."""
        self._settings.set(SURVEY_CUSTOMER_DAYS, days)

    @property
    def prompt_after_resolve(self) -> bool:
        return self._settings.get(SURVEY_PROMPT_AFTER_RESOLVE)

    def set_prompt_after_resolve(self, enabled: bool) -> None:
        self._settings.set(SURVEY_PROMPT_AFTER_RESOLVE, enabled)

    @property
    def min_n(self) -> int:
        return self._settings.get(NET_EASY_MIN_N)

    def _actor(self) -> str:
        return self._settings.get(AGENT_NAME).strip() or "agent"

    # ------------------------------------------------------------------ the guard
    def _head(self, mention_id: int) -> MentionRow | None:
        row = self._mentions.rows_by_id([mention_id]).get(mention_id)
        if row is not None and row.head_id is not None:
            row = self._mentions.rows_by_id([row.head_id]).get(row.head_id)
        return row

    def check(self, mention_id: int) -> SurveyCheck:
        """Apply the fatigue guard to this conversation now.

        One survey per conversation; none to the same customer within the configured days (0–180) and never
        two within 24 h; none on spam, community-answered or still-waiting items (waiting on the customer, or
        the customer waiting for our reply). Only answered or resolved conversations are surveyed.
        """
        head = self._head(mention_id)
        if head is None:
            return SurveyCheck(False, Refusal.NOT_FOUND, "This conversation no longer exists.", False, "")
        private = head.channel in PRIVATE_VISIBILITY
        route = "as a direct message" if private else "in the public thread (this channel has no private messages)"

        def refuse(refusal: Refusal, reason: str) -> SurveyCheck:
            return SurveyCheck(False, refusal, reason, private, route)

        now = self._clock.now()
        if head.status is MentionStatus.SPAM:
            return refuse(Refusal.SPAM, "Not sent: this item is marked as spam.")
        if head.status is MentionStatus.COMMUNITY:
            return refuse(Refusal.COMMUNITY, "Not sent: the community answered this one, not us.")
        if head.status is MentionStatus.WAITING:
            return refuse(Refusal.WAITING, "Not sent: we are still waiting on the customer.")
        if head.status is not MentionStatus.RESOLVED:
            running = [
                d
                for d in self._mentions.deadlines(head.id)
                if d.kind.value in ("first_response", "next_response") and d.met_at is None and d.cancelled_at is None
            ]
            if running:
                return refuse(Refusal.WAITING, "Not sent: the customer is still waiting for a reply.")
            if not self._surveys.has_sent_reply(head.id):
                return refuse(Refusal.UNANSWERED, "Not sent: nobody has answered this conversation yet.")
        earlier = self._surveys.for_mention(head.id)
        if earlier is not None or head.id in self._sending:
            return refuse(Refusal.ALREADY_SURVEYED, "Not sent: this conversation was already surveyed.")
        if head.customer_id is not None:
            last = self._surveys.last_for_customer(head.customer_id)
            if last is not None:
                gap = now - last.sent_at
                days = self._settings.get(SURVEY_CUSTOMER_DAYS)
                who = f"@{head.author_handle}"
                if gap < MIN_GAP:
                    return refuse(
                        Refusal.CUSTOMER_24H,
                        f"Not sent: {who} got a survey {_days(gap)} ago; never two within 24 hours.",
                    )
                if gap < days * DAY:
                    return refuse(
                        Refusal.CUSTOMER_RECENT,
                        f"Not sent: {who} got a survey {_days(gap)} ago; the limit is one every {days} days.",
                    )
        return SurveyCheck(True, None, "", private, route)

    # ------------------------------------------------------------------ sending
    async def send(self, mention_id: int) -> SurveyRow:
        """Send the survey through the outbox if the guard allows it.

        Returns:
            The recorded survey.

        Raises:
            SurveyRefused: the guard said no (``check.reason`` says why); nothing was queued.
            StorageError: the survey could not be recorded.
        """
        check = self.check(mention_id)
        if not check.allowed:
            raise SurveyRefused(check)
        head = self._head(mention_id)
        assert head is not None  # check() returned NOT_FOUND otherwise
        question = self.question
        visibility = PRIVATE_VISIBILITY.get(head.channel)
        self._sending.add(head.id)
        try:
            result = self._send(head.id, question, visibility)
            reply_id = await result if inspect.isawaitable(result) else result
            return self._surveys.create(
                mention_id=head.id,
                customer_id=head.customer_id,
                reply_id=int(reply_id),
                sent_at=int(self._clock.now()),
                question_version=question_version(question),
                actor=self._actor(),
                scale=(SCALE_MIN, SCALE_MAX),
            )
        finally:
            self._sending.discard(head.id)

    # ------------------------------------------------------------------ reading answers
    def on_sync(self, report: SyncReport) -> None:
        """Poller listener: read answers from the messages a sync stored.

        An answer to the survey usually replies to our survey message, so it joins the surveyed thread and
        shows up among the report's follow-ups; a customer may also answer in a fresh direct message (a new
        item). Listeners of :meth:`subscribe` hear about the surveys answered.
        """
        if not report.ok or not (report.follow_ups or report.new_items):
            return
        try:
            answered = self.read_answers(report.follow_ups) if report.follow_ups else []
            if report.new_items:
                answered += self.read_direct_answers(report.new_items)
        except StorageError:
            log.exception("reading survey answers failed")
            return
        if answered:
            for listener in list(self._listeners):
                listener(answered)

    def subscribe(self, listener: Callable[[list[SurveyRow]], None]) -> None:
        """Be told about the surveys each sync answered (the conversation area refreshes)."""
        self._listeners.append(listener)

    def read_answers(self, head_ids: Iterable[int]) -> list[SurveyRow]:
        """Parse the surveyed customers' messages in these conversations.

        Only the surveyed customer counts, only in the surveyed thread, only within 7 days of the survey.
        Messages without anything answer-like are skipped (the next one may hold the answer); the first
        message with an answer or an unclear answer ends the survey. A message that is only an answer puts a
        conversation it reopened back to resolved (no reply owed); one that also asks something new leaves it
        reopened for the question.

        Returns:
            The surveys that got an answer.
        """
        now = int(self._clock.now())
        answered: list[SurveyRow] = []
        for survey in self._surveys.awaiting_answer(head_ids, sent_after=now - LOOKBACK):
            if survey.customer_id is None:
                continue
            messages = self._surveys.customer_messages(
                survey.mention_id, survey.customer_id, after=survey.sent_at, until=survey.sent_at + ANSWER_WINDOW
            )
            for message in messages:
                parsed = parse_answer(message.text)
                if parsed.kind is AnswerKind.NONE:
                    continue
                row, restored = self._surveys.record_answer(
                    survey.id,
                    message=message,
                    score=parsed.score,
                    comment=parsed.comment,
                    needs_review=parsed.kind is AnswerKind.AMBIGUOUS,
                    at=now,
                    actor="sync",
                    settle=not parsed.has_question,
                    question=parsed.has_question,
                )
                answered.append(row)
                if restored is not None and self._on_status_change is not None:
                    # The event is logged already; the SLA engine replays the item and closes its clocks.
                    self._on_status_change(survey.mention_id, MentionStatus.OPEN, restored, message.posted_at)
                break
        self._replay(answered)
        return answered

    def _replay(self, answered: list[SurveyRow]) -> None:
        if answered and self._on_answered is not None:
            self._on_answered(list(dict.fromkeys(s.mention_id for s in answered)))

    def read_direct_answers(self, new_heads: Iterable[int]) -> list[SurveyRow]:
        """Answers that arrived as a fresh direct message instead of a reply in the surveyed thread.

        Only direct messages count (never a public post), only from a customer with a survey awaiting an
        answer (sent within 7 days before the message). The answer is stored on that survey; a message that
        is only an answer is resolved at once (it asks nothing), one that also asks something stays open.

        Returns:
            The surveys that got an answer.
        """
        now = int(self._clock.now())
        rows = [
            r
            for r in self._mentions.rows_by_id(new_heads).values()
            if r.head_id is None and r.kind is MentionKind.DIRECT and r.customer_id is not None
        ]
        if not rows:
            return []
        awaiting: dict[int, SurveyRow] = {}
        for pending in self._surveys.awaiting_for_customers(
            [r.customer_id for r in rows if r.customer_id is not None], sent_after=now - LOOKBACK
        ):
            if pending.customer_id is not None:
                awaiting.setdefault(pending.customer_id, pending)  # the newest survey of each customer
        answered: list[SurveyRow] = []
        for row in sorted(rows, key=lambda r: (r.posted_at, r.id)):
            survey = awaiting.get(row.customer_id) if row.customer_id is not None else None
            if survey is None or survey.parsed_at is not None or survey.mention_id == row.id:
                continue
            if not survey.sent_at <= row.posted_at <= survey.sent_at + ANSWER_WINDOW:
                continue
            parsed = parse_answer(row.text)
            if parsed.kind is AnswerKind.NONE:
                continue
            message = CustomerMessage(row.id, row.id, row.posted_at, row.text)
            stored, _ = self._surveys.record_answer(
                survey.id,
                message=message,
                score=parsed.score,
                comment=parsed.comment,
                needs_review=parsed.kind is AnswerKind.AMBIGUOUS,
                at=now,
                actor="sync",
                settle=False,
                question=parsed.has_question,
            )
            awaiting[survey.customer_id or 0] = stored
            answered.append(stored)
            if not parsed.has_question:
                old = self._surveys.resolve_answer_item(row.id, at=row.posted_at, actor="sync")
                if old is not None and self._on_status_change is not None:
                    self._on_status_change(row.id, old, MentionStatus.RESOLVED, row.posted_at)
        return answered

    def score_manually(self, survey_id: int, score: int | None) -> SurveyRow:
        """One click on a flagged answer: the agent's score, or None for "not an answer".

        Raises:
            ValueError: a score outside 1–7.
        """
        return self._surveys.score_manually(survey_id, score, at=int(self._clock.now()), actor=self._actor())

    # ------------------------------------------------------------------ reads for the UI
    def state(self, mention_id: int) -> SurveyState:
        """Everything the conversation area shows about surveys for this item."""
        head = self._head(mention_id)
        head_id = mention_id if head is None else head.id
        survey = self._surveys.for_mention(head_id)
        last = None
        if head is not None and head.customer_id is not None:
            last = self._surveys.last_answer(head.customer_id)
        expired = survey is not None and not survey.answered and self._clock.now() > survey.sent_at + ANSWER_WINDOW
        handle = "" if head is None else head.author_handle
        return SurveyState(head_id, handle, survey, last, self.check(head_id), expired)

    def needing_review(self) -> list[SurveyRow]:
        return self._surveys.needing_review()

    # ------------------------------------------------------------------ figures
    def records(self, *, since: int, until: int) -> list[SurveyRecord]:
        """Sent surveys of a period, as the Net Easy groupings take them."""
        return [_record(f) for f in self._surveys.facts(since=since, until=until)]

    def overall(self, *, since: int, until: int) -> NetEasy:
        """Net Easy over a period, with n, interval and response rate."""
        records = self.records(since=since, until=until)
        return net_easy([r.score for r in records if r.score is not None], sent=len(records), min_n=self.min_n)

    def per_channel(self, *, since: int, until: int) -> dict[str, NetEasy]:
        return by_channel(self.records(since=since, until=until), min_n=self.min_n)

    def per_agent(self, *, since: int, until: int) -> dict[str, NetEasy]:
        return by_agent(self.records(since=since, until=until), min_n=self.min_n)

    def per_shift(self, *, since: int, until: int) -> dict[int, NetEasy]:
        return by_shift(self.records(since=since, until=until), min_n=self.min_n)

    def per_template(self, *, since: int, until: int) -> dict[int, NetEasy]:
        return by_template(self.records(since=since, until=until), min_n=self.min_n)

    def report(self, *, since: int, until: int, points: int = 8) -> NetEasyReport:
        """Everything the Net Easy panel shows for ``[since, until)``.

        Args:
            since: start of the period (epoch seconds).
            until: end of the period, exclusive.
            points: slices of the trend chart.

        Returns:
            The overall figure, the previous period's, the tested trend, chart points and the groupings.
        """
        min_n = self.min_n
        length = max(1, until - since)
        records = self.records(since=since - length, until=until)
        current = [r for r in records if r.sent_at >= since]
        earlier = [r for r in records if r.sent_at < since]

        def overall(chosen: list[SurveyRecord]) -> NetEasy:
            return net_easy([r.score for r in chosen if r.score is not None], sent=len(chosen), min_n=min_n)

        now_figure, before = overall(current), overall(earlier)
        templates = by_template(current, min_n=min_n)
        shifts = by_shift(current, min_n=min_n)
        names = self._surveys.template_names(templates)
        shift_info = self._surveys.shift_labels(shifts)
        groups = {
            Grouping.CHANNEL: _sorted(
                [GroupFigure(k.capitalize() or "Unknown", f) for k, f in by_channel(current, min_n=min_n).items()]
            ),
            Grouping.AGENT: _sorted(
                [GroupFigure(k or "(no agent name)", f) for k, f in by_agent(current, min_n=min_n).items()]
            ),
            Grouping.SHIFT: _sorted(
                [
                    GroupFigure(f"Shift {k} · {shift_info[k][0]}" if k in shift_info else f"Shift {k}", f)
                    for k, f in shifts.items()
                ]
            ),
            Grouping.TEMPLATE: _sorted([GroupFigure(names.get(k, f"Template {k}"), f) for k, f in templates.items()]),
        }
        return NetEasyReport(
            since=since,
            until=until,
            overall=now_figure,
            previous=before,
            trend=trend(before, now_figure),
            points=tuple(series(current, since=since, until=until, points=points, min_n=min_n)),
            groups=groups,
        )


def _sorted(rows: list[GroupFigure]) -> tuple[GroupFigure, ...]:
    return tuple(sorted(rows, key=lambda g: (-g.figure.n, g.label)))


def _record(fact: SurveyFact) -> SurveyRecord:
    return SurveyRecord(
        survey_id=fact.survey_id,
        sent_at=fact.sent_at,
        score=fact.score,
        channel=fact.channel,
        agent=fact.agent,
        shift_id=fact.shift_id,
        template_ids=fact.template_ids,
    )
