"""Team reports (issue 23): the shift summary of any period, agents and channels, from the team's event log.

The same ``ShiftSummary`` (and so the same five export formats) as a shift on one machine, computed by the same
``SummaryBuilder``: ``PeriodFacts`` answers the builder's reads (``SummaryFacts``) from the events a period of
the team log holds (storage/team/reports.py ``PeriodLog``), so that a team's figures cannot drift from a solo
agent's. Net Easy is pooled from the answers' counts (never an average of per-agent scores) and each customer is
counted once, by a key that is the same on every machine.

Items are numbered by the server's sequence number of their first message (``mention_id`` in the summary), the
one id every member agrees on. The first-response deadline is the team's (posted + 30 minutes, as the
items trigger sets ``due_at``); it is met by the first reply sent or seen on the channel. Claims, releases,
reassignments, hand-overs and "send anyway" are not the agents' handling of an item: they go to the summary's
audit list instead, in the words the item's history uses.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace

from console.ports import Clock
from console.reports.summary import (
    RESPONSE_PURPOSES,
    AuditEntry,
    NetEasyScorer,
    ShiftSummary,
    SummaryBuilder,
    redact_text,
    score_net_easy,
)
from console.sla.calendar import Calendar
from console.wording import team_action
from storage.rows import DeadlineKind, DeadlineRow, EventRow, MentionStatus
from storage.shifts import ItemFacts, LastMessage, SentReply, ShiftRow, SurveyFacts
from storage.team.reports import LogEvent, PeriodLog, channel_of

#: The team's first-response target (docs/TEAM.md: ``due_at = posted_at + 1800`` by default).
FIRST_RESPONSE_SECONDS = 1800
#: Warned this long before the due time, as the local SLA engine does (a quarter of the target).
WARN_BEFORE_SECONDS = FIRST_RESPONSE_SECONDS // 4
#: Kinds that are audited actions, not handling: listed in the summary's audit, kept out of the work figures.
AUDIT_KINDS = frozenset({"claimed", "released", "claim_broken", "reassigned", "handed_over", "send_anyway"})
#: Kinds the app writes on a member's machine (fetching a mention, seeing the brand's reply, reading a survey
#: answer): not anyone's work, whichever member's copy wrote them (the local log's actor for them is "sync").
SYNC_KINDS = frozenset({"mention", "reply_seen", "survey_answered"})
#: Statuses that close an item's first-response clock without a reply (nothing to answer any more).
_NO_ANSWER_NEEDED = frozenset({MentionStatus.RESOLVED, MentionStatus.COMMUNITY, MentionStatus.SPAM})
#: Priority of an item with no ``priority_changed`` event (the items table's default).
DEFAULT_PRIORITY = 2


@dataclass
class _Item:
    """One head item of the period, replayed from its events."""

    id: int
    key: str
    channel: str
    head: LogEvent
    status: MentionStatus = MentionStatus.NEW
    priority: int = DEFAULT_PRIORITY
    tags: str = ""
    messages: list[LogEvent] = field(default_factory=list)  # the head's and follow-ups' mention events
    events: list[LogEvent] = field(default_factory=list)  # every event about the item (follow-ups' included)

    @property
    def posted_at(self) -> int:
        return _int(self.head.data.get("posted_at"), self.head.at)

    @property
    def customer(self) -> str:
        """``channel:author_id``: the customer key the items table uses too."""
        return f"{self.channel}:{self.head.data.get('author_id', '')}"


def _int(value: object, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return default
    return default


def _tags(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(t) for t in value)
    return "" if value is None else str(value)


def _status(value: object) -> MentionStatus | None:
    try:
        return MentionStatus(value) if isinstance(value, str) else None
    except ValueError:
        return None


def head_key(event: LogEvent) -> str | None:
    """The key of the thread head a mention event belongs to (itself for a head)."""
    head = event.data.get("head_external_id")
    if event.kind == "mention" and head:
        return f"{event.data.get('account_key', '')}#{head}"
    return event.item_key


class PeriodFacts:
    """``SummaryFacts`` over a team period's log, optionally cut to some agents' items.

    Built once from ``PeriodLog`` (no I/O afterwards), so that the builder can run anywhere, a worker thread
    included.
    """

    def __init__(self, log: PeriodLog, *, agents: Collection[str] | None = None) -> None:
        self.log = log
        self._agents = frozenset(agents) if agents is not None else None
        items: dict[str, _Item] = {}
        heads_for: dict[str, str] = {}
        ordered = sorted(log.item_events, key=lambda e: e.seq)
        # Heads first (a follow-up fetched before its head still joins it), then everything else in order.
        for e in ordered:
            if e.kind == "mention" and e.item_key is not None and head_key(e) == e.item_key:
                items.setdefault(e.item_key, _Item(e.seq, e.item_key, channel_of(e.item_key), e))
        for e in ordered:
            if e.kind == "mention" and e.item_key is not None:
                head = head_key(e) or e.item_key
                if head not in items:  # a follow-up whose head the server never saw: it stands on its own
                    head = e.item_key
                    items.setdefault(head, _Item(e.seq, head, channel_of(head), e))
                heads_for[e.item_key] = head
        self._followup_ids: dict[int, int] = {}
        for e in ordered:
            if e.item_key is None:
                continue
            item = items.get(heads_for.get(e.item_key, e.item_key))
            if item is None:
                continue  # events of an item whose first message is not on the server: nothing to report on
            item.events.append(e)
            if e.kind == "mention":
                item.messages.append(e)
                if e.seq != item.id:
                    self._followup_ids[e.seq] = item.id
            elif e.kind == "status_changed":
                item.status = _status(e.data.get("to")) or item.status
            elif e.kind == "priority_changed":
                item.priority = _int(e.data.get("to"), item.priority)
            elif e.kind == "tags_changed":
                item.tags = _tags(e.data.get("to", e.data.get("tags")))
        if self._agents is not None:
            mine = self._agents
            items = {
                k: i
                for k, i in items.items()
                if any(e.author in mine and e.kind not in SYNC_KINDS and e.at <= log.end for e in i.events)
            }
        self._items = items
        self._by_id = {i.id: i for i in items.values()}

    # ------------------------------------------------------------------ what the report covers
    @property
    def authors(self) -> frozenset[str]:
        """Every member whose own actions (not the app's) are in the period."""
        return frozenset(
            e.author for i in self._items.values() for e in i.events if e.kind not in SYNC_KINDS | AUDIT_KINDS
        )

    def item_key(self, mention_id: int) -> str | None:
        item = self._by_id.get(mention_id)
        return None if item is None else item.key

    def _counts(self, author: str) -> bool:
        return self._agents is None or author in self._agents

    # ------------------------------------------------------------------ SummaryFacts
    def _event_row(self, item: _Item, e: LogEvent) -> EventRow:
        if e.kind == "mention":
            kind = "received" if e.seq == item.id else "follow_up"
            return EventRow(e.seq, e.at, "sync", e.seq, kind, json.dumps(e.data))
        actor = "sync" if e.kind in SYNC_KINDS else e.author
        return EventRow(e.seq, e.at, actor, item.id, e.kind, json.dumps(e.data))

    def events_between(self, start: int, end: int) -> list[EventRow]:
        rows = [
            self._event_row(item, e)
            for item in self._items.values()
            for e in item.events
            if start <= e.at <= end and e.kind not in AUDIT_KINDS
        ]
        rows.sort(key=lambda r: (r.at, r.id))
        return rows

    def heads_of(self, mention_ids: Sequence[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        for mid in mention_ids:
            if mid in self._by_id:
                out[mid] = mid
            elif mid in self._followup_ids:
                out[mid] = self._followup_ids[mid]
        return out

    def heads_received_between(self, start: int, end: int) -> list[int]:
        return sorted(i.id for i in self._items.values() if start <= i.posted_at <= end)

    def open_head_candidates(self, end: int) -> list[int]:
        out: set[int] = set()
        for i in self._items.values():
            if i.posted_at > end:
                continue
            if i.status in (MentionStatus.NEW, MentionStatus.OPEN, MentionStatus.WAITING) or any(
                e.at > end and e.kind in ("status_changed", "reopened") for e in i.events
            ):
                out.add(i.id)
        return sorted(out)

    def status_events(self, ids: Sequence[int]) -> dict[int, list[tuple[int, str, str]]]:
        out: dict[int, list[tuple[int, str, str]]] = {}
        for mid in ids:
            item = self._by_id.get(mid)
            if item is None:
                continue
            rows = []
            for e in item.events:
                if e.kind == "mention" and e.seq == item.id:
                    rows.append((e.at, "received", json.dumps(e.data), e.seq))
                elif e.kind in ("status_changed", "reopened", "survey_answered"):
                    rows.append((e.at, e.kind, json.dumps(e.data), e.seq))
            rows.sort(key=lambda r: (r[0], r[3]))
            if rows:
                out[mid] = [(at, kind, data) for at, kind, data, _seq in rows]
        return out

    def items(self, ids: Sequence[int]) -> dict[int, ItemFacts]:
        out: dict[int, ItemFacts] = {}
        for mid in ids:
            i = self._by_id.get(mid)
            if i is None:
                continue
            d = i.head.data
            posted = [_int(m.data.get("posted_at"), m.at) for m in i.messages] or [i.posted_at]
            out[mid] = ItemFacts(
                id=i.id, channel=i.channel, customer_id=None, author_handle=str(d.get("author_handle", "")),
                author_name=str(d.get("author_name", "")), text=str(d.get("text", "")), url=str(d.get("url", "")),
                posted_at=i.posted_at, status=i.status, priority=i.priority, tags=i.tags,
                is_first_contact=self.log.first_contact_at.get(i.customer, i.posted_at) >= i.posted_at,
                last_message_at=max(posted), message_count=len(i.messages) or 1,
                customer_external_id=str(d.get("author_id", "")),
            )  # fmt: skip
        return out

    def _replies_of(self, item: _Item) -> list[SentReply]:
        sending = {str(e.data.get("reply_key")): e for e in item.events if e.kind == "reply_sending"}
        out: list[SentReply] = []
        for e in item.events:
            if e.kind != "reply_sent":
                continue
            key = str(e.data.get("reply_key"))
            began = sending.get(key)
            sent_at = _int(e.data.get("posted_at"), e.at)
            out.append(
                SentReply(
                    id=e.seq, head_id=item.id, purpose=str(e.data.get("purpose") or "reply"), state="sent",
                    text=str(e.data.get("text", "")), created_at=began.at if began is not None else e.at,
                    sent_at=sent_at,
                )
            )  # fmt: skip
        return out

    def _reply_authors(self, item: _Item) -> dict[int, str]:
        return {e.seq: e.author for e in item.events if e.kind == "reply_sent"}

    def replies(self, ids: Sequence[int]) -> list[SentReply]:
        out = [r for mid in ids if (i := self._by_id.get(mid)) is not None for r in self._replies_of(i)]
        out.sort(key=lambda r: (r.sent_at if r.sent_at is not None else r.created_at, r.id))
        return out

    def replies_sent_between(self, start: int, end: int) -> list[SentReply]:
        out: list[SentReply] = []
        for item in self._items.values():
            authors = self._reply_authors(item)
            for r in self._replies_of(item):
                if r.sent_at is not None and start <= r.sent_at <= end and self._counts(authors.get(r.id, "")):
                    out.append(r)
        out.sort(key=lambda r: (r.sent_at or 0, r.id))
        return out

    def _surveys_of(self, item: _Item) -> list[tuple[SurveyFacts, str]]:
        answers: dict[str, LogEvent] = {}
        loose: list[LogEvent] = []
        for e in item.events:
            if e.kind == "survey_answered" and _int(e.data.get("score"), 0) in range(1, 8):
                key = e.data.get("reply_key")
                if key:
                    answers.setdefault(str(key), e)
                else:
                    loose.append(e)
        out: list[tuple[SurveyFacts, str]] = []
        for e in item.events:
            if e.kind != "survey_sent":
                continue
            answer = answers.get(str(e.data.get("reply_key"))) if e.data.get("reply_key") else None
            if answer is None and loose:
                answer = loose.pop(0)
            score = None if answer is None else _int(answer.data.get("score"), 0)
            facts = SurveyFacts(e.seq, item.id, e.at, score, None if answer is None else answer.at)
            out.append((facts, e.author))
        return out

    def surveys(self, ids: Sequence[int]) -> list[SurveyFacts]:
        return [s for mid in ids if (i := self._by_id.get(mid)) is not None for s, _a in self._surveys_of(i)]

    def surveys_sent_between(self, start: int, end: int) -> list[SurveyFacts]:
        out = [
            s
            for i in self._items.values()
            for s, author in self._surveys_of(i)
            if s.sent_at is not None and start <= s.sent_at <= end and self._counts(author)
        ]
        out.sort(key=lambda s: s.id)
        return out

    def _first_response(self, item: _Item) -> DeadlineRow:
        posted = item.posted_at
        met: int | None = None
        cancelled: int | None = None
        for e in item.events:
            if (
                e.kind == "reply_sent" and str(e.data.get("purpose") or "reply") in RESPONSE_PURPOSES
            ) or e.kind == "reply_seen":
                when = _int(e.data.get("posted_at"), e.at)
            else:
                if e.kind == "status_changed" and _status(e.data.get("to")) in _NO_ANSWER_NEEDED and met is None:
                    cancelled = e.at if cancelled is None else cancelled
                continue
            met = when if met is None else min(met, when)
        if met is not None and cancelled is not None and cancelled >= met:
            cancelled = None
        due = posted + FIRST_RESPONSE_SECONDS
        return DeadlineRow(
            id=item.id, mention_id=item.id, kind=DeadlineKind.FIRST_RESPONSE, started_at=posted, due_at=due,
            warn_at=due - WARN_BEFORE_SECONDS, met_at=met, paused_at=None, breached_at=None, cancelled_at=cancelled,
        )  # fmt: skip

    def deadlines(self, ids: Sequence[int]) -> list[DeadlineRow]:
        out = [self._first_response(i) for mid in ids if (i := self._by_id.get(mid)) is not None]
        out.sort(key=lambda d: (d.due_at, d.id))
        return out

    def deadlines_settled_between(self, start: int, end: int) -> list[DeadlineRow]:
        out = []
        for item in self._items.values():
            d = self._first_response(item)
            if (d.met_at is not None and start <= d.met_at <= end) or (
                d.breached_at is not None and start <= d.breached_at <= end
            ):
                out.append(d)
        out.sort(key=lambda d: (d.due_at, d.id))
        return out

    def last_messages(self, ids: Sequence[int], end: int) -> dict[int, LastMessage]:
        out: dict[int, LastMessage] = {}
        for mid in ids:
            item = self._by_id.get(mid)
            if item is None:
                continue
            best: LastMessage | None = None
            for m in item.messages:
                at = _int(m.data.get("posted_at"), m.at)
                if at <= end and (best is None or at >= best.at):
                    best = LastMessage(mid, at, str(m.data.get("text", "")), True)
            for r in self._replies_of(item):
                if r.sent_at is not None and r.sent_at <= end and (best is None or r.sent_at >= best.at):
                    best = LastMessage(mid, r.sent_at, r.text, False)
            if best is not None:
                out[mid] = best
        return out

    # ------------------------------------------------------------------ audit
    def audit(self, start: int, end: int, *, redact: bool = False) -> list[AuditEntry]:
        """Every audited action of the period (claims, releases, reassignments, hand-overs, "send anyway")."""
        by_key = {i.key: i for i in self._items.values()}
        out: list[AuditEntry] = []
        for e in [*(e for i in self._items.values() for e in i.events), *self.log.other_events]:
            if e.kind not in AUDIT_KINDS or not start <= e.at <= end:
                continue
            if self._agents is not None and e.author not in self._agents and e.data.get("to") not in self._agents:
                continue
            text = team_action(e.kind, e.data) or e.kind
            item = by_key.get(e.item_key) if e.item_key is not None else None
            out.append(
                AuditEntry(
                    at=e.at, actor=e.author, kind=e.kind, mention_id=0 if item is None else item.id,
                    channel="" if item is None else item.channel, text=redact_text(text) if redact else text,
                )
            )  # fmt: skip
        out.sort(key=lambda a: (a.at, a.mention_id, a.kind))
        return out


def team_label(agents: Collection[str] | None, channels: Collection[str] | None) -> str:
    """What a report covers, for its title: ``"Team"``, ``"Alex, Sam"``, ``"Team · mastodon"``."""
    who = ", ".join(sorted(agents)) if agents else "Team"
    return f"{who} · {', '.join(sorted(channels))}" if channels else who


def build_team_summary(
    log: PeriodLog,
    clock: Clock,
    *,
    agents: Collection[str] | None = None,
    channels: Collection[str] | None = None,
    redact: bool = False,
    hourly_rate: float = 30.0,
    currency: str = "EUR",
    scorer: NetEasyScorer = score_net_easy,
    business: tuple[str, Calendar] | None = None,
) -> ShiftSummary:
    """The summary of a team period: the shift summary's figures over ``log``, with the period's audit.

    Args:
        log: the period's facts (storage.team.reports.TeamReportRepo.period; channels already filtered there).
        clock: for ``generated_at``.
        agents: only these members' work (their items, replies and surveys); None: everyone's.
        channels: the channels the log was cut to (for the report's title only).
        redact: as for a shift summary (customers pseudonymised, handles and links out of texts).
    """
    facts = PeriodFacts(log, agents=agents)
    label = team_label(agents, channels)
    shift = ShiftRow(0, label, log.start, log.end, "")
    builder = SummaryBuilder(facts, clock, hourly_rate=hourly_rate, currency=currency, scorer=scorer, business=business)
    who = frozenset(agents) if agents is not None else facts.authors
    summary = builder.build(shift, redact=redact, agents=who)
    return replace(summary, audit=facts.audit(log.start, log.end, redact=redact))


__all__ = [
    "AUDIT_KINDS",
    "FIRST_RESPONSE_SECONDS",
    "PeriodFacts",
    "build_team_summary",
    "head_key",
    "team_label",
]
