"""The shift summary: a versioned, self-contained record computed from the tables and the event log."""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from console.net_easy import MIN_N, adjusted_wald
from console.ports import Clock
from storage.rows import DeadlineKind, DeadlineRow, EventRow, MentionStatus
from storage.shifts import ItemFacts, SentReply, ShiftRepo, ShiftRow, SurveyFacts

SCHEMA_ID = "care-console/shift-summary"
SCHEMA_VERSION = 1

#: Actors that are the app, not the agent (brief: "sync", "sla", "outbox").
APP_ACTORS = frozenset({"sync", "sla", "outbox"})
#: Reply purposes that are responses to the customer (meet response targets; count for "single reply").
RESPONSE_PURPOSES = frozenset({"reply", "holding"})
#: Handling time credits the gap since the agent's previous action, capped: longer gaps are breaks.
IDLE_CAP_SECONDS = 600
OPEN_AT_END = frozenset({MentionStatus.NEW, MentionStatus.OPEN, MentionStatus.WAITING})
CLOSED = frozenset({MentionStatus.RESOLVED, MentionStatus.COMMUNITY})
#: Net Easy buckets on the 1 (extremely easy) … 7 (extremely difficult) scale (reference/metrics.md §1).
EASY_SCORES = frozenset({1, 2})
DIFFICULT_SCORES = frozenset({5, 6, 7})
LOW_SAMPLE = MIN_N
TOP_THEMES = 8
QUOTE_CHARS = 160


# ---------------------------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class ShiftInfo:
    id: int
    agent: str
    started_at: int
    ended_at: int | None
    notes: str


@dataclass(frozen=True)
class Counts:
    received: int
    handled: int
    resolved: int
    resolved_single_reply: int
    community: int
    still_open: int
    replies_sent: int
    surveys_sent: int
    surveys_answered: int


@dataclass(frozen=True)
class FirstResponse:
    n: int
    median_s: float | None
    p90_s: float | None
    mean_s: float | None
    #: Every first-response time of the shift in seconds, so that reviews pool them (not average medians).
    samples_s: list[int]


@dataclass(frozen=True)
class SlaKind:
    kind: str
    met: int
    breached: int
    met_pct: float | None


@dataclass(frozen=True)
class Breach:
    mention_id: int
    channel: str
    customer: str
    kind: str
    due_at: int
    breached_at: int
    met_at: int | None
    url: str
    excerpt: str


@dataclass(frozen=True)
class NetEasy:
    sent: int
    n: int
    easy: int
    neutral: int
    difficult: int
    score: float | None
    low: float | None
    high: float | None
    margin: float | None
    response_rate: float | None
    low_sample: bool


@dataclass(frozen=True)
class ChannelFigures:
    channel: str
    items: int
    unique_customers: int
    received: int
    handled: int
    resolved: int
    resolution_rate: float | None
    handling_s: int
    cost: float
    net_easy: NetEasy


@dataclass(frozen=True)
class Theme:
    kind: str  # "tag" or "term"
    label: str
    count: int
    quotes: list[str]


@dataclass(frozen=True)
class DeadlineState:
    kind: str
    due_at: int
    state: str  # running / paused / breached


@dataclass(frozen=True)
class HandoverItem:
    mention_id: int
    channel: str
    customer: str
    status: str
    priority: int
    tags: str
    received_at: int
    deadlines: list[DeadlineState]
    last_message_at: int
    last_message_from: str  # customer / agent
    last_message: str
    url: str


@dataclass(frozen=True)
class HourBucket:
    start: int
    received: int
    replies: int
    met: int
    breached: int


@dataclass(frozen=True)
class ItemRow:
    """One row per item in CSV/XLSX: its times, states, SLA results and survey score."""

    mention_id: int
    channel: str
    customer: str
    received_at: int
    status: str
    priority: int
    tags: str
    first_contact: bool
    messages: int
    received_in_shift: bool
    handled_in_shift: bool
    open_at_end: bool
    first_response_at: int | None
    first_response_s: int | None
    replies_sent: int
    resolved_at: int | None
    sla_first_response: str
    sla_next_response: str
    sla_follow_up: str
    sla_resolution: str
    breaches: int
    survey_score: int | None
    handling_s: int
    url: str
    text: str


@dataclass(frozen=True)
class ShiftSummary:
    schema: str
    version: int
    generated_at: int
    redacted: bool
    hourly_rate: float
    currency: str
    shift: ShiftInfo
    counts: Counts
    first_response: FirstResponse
    sla: list[SlaKind]
    breaches: list[Breach]
    net_easy: NetEasy
    channels: list[ChannelFigures]
    themes: list[Theme]
    handover: list[HandoverItem]
    hours: list[HourBucket]
    items: list[ItemRow] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, int, int]:
        """Identity for de-duplication in reviews: the same shift loaded twice has the same key."""
        return (self.shift.agent, self.shift.id, self.shift.started_at)


# ---------------------------------------------------------------------------------------------------- Net Easy
NetEasyScorer = Callable[[int, int, int, int], NetEasy]
"""(sent, easy, neutral, difficult) -> NetEasy. The seam for console/net_easy.py; ``score_net_easy`` by default."""


def score_net_easy(sent: int, easy: int, neutral: int, difficult: int) -> NetEasy:
    """Net Easy = 100 × (easy − difficult) / n with the 95% adjusted-Wald interval of console/net_easy.py.

    Args:
        sent: surveys sent (for the response rate).
        easy: answers 1–2. neutral: answers 3–4. difficult: answers 5–7.
    """
    n = easy + neutral + difficult
    rate = None if sent <= 0 else min(1.0, n / sent)
    interval = adjusted_wald(easy, neutral, difficult)
    if n == 0 or interval is None:
        return NetEasy(sent, 0, 0, 0, 0, None, None, None, None, rate, True)
    score = 100.0 * (easy - difficult) / n
    low, high = interval.low, interval.high
    return NetEasy(sent, n, easy, neutral, difficult, score, low, high, (high - low) / 2, rate, n < LOW_SAMPLE)


def bucket_scores(scores: Iterable[int]) -> tuple[int, int, int]:
    """(easy, neutral, difficult) counts of 1–7 answers."""
    easy = neutral = difficult = 0
    for s in scores:
        if s in EASY_SCORES:
            easy += 1
        elif s in DIFFICULT_SCORES:
            difficult += 1
        else:
            neutral += 1
    return easy, neutral, difficult


# ---------------------------------------------------------------------------------------------------- helpers
def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (``q`` in 0..1) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


def first_response_figures(samples: Sequence[int]) -> FirstResponse:
    ordered = sorted(samples)
    return FirstResponse(
        n=len(ordered),
        median_s=float(statistics.median(ordered)) if ordered else None,
        p90_s=None if not ordered else round(percentile(ordered, 0.9) or 0.0, 1),
        mean_s=float(statistics.fmean(ordered)) if ordered else None,
        samples_s=ordered,
    )


def shift_outcome(d: DeadlineRow, start: int, end: int) -> tuple[str, int] | None:
    """What a deadline counts as in a shift: ("breached", when) or ("met", when), or None if not this shift's.

    A breach counts in the shift it happened in. A deadline met late, after a breach before the shift started,
    counts in neither column: it is not on time, and the breach belongs to whoever was on duty then.
    """
    if d.breached_at is not None:
        return ("breached", d.breached_at) if start <= d.breached_at <= end else None
    if d.met_at is not None and start <= d.met_at <= end:
        return "met", d.met_at
    return None


def sla_kind(kind: str, met: int, breached: int) -> SlaKind:
    total = met + breached
    return SlaKind(kind, met, breached, None if total == 0 else 100.0 * met / total)


_HANDLE = re.compile(r"@[\w.+-]+(?:@[\w.-]+)?")
_URL = re.compile(r"https?://\S+")
_WORD = re.compile(r"[^\W\d_][\w'’-]{3,}", re.UNICODE)
STOPWORDS = frozenset(
    """
    about above after again against also been before being below between both cannot could doing down during
    each every from further have having here hers herself himself into itself just more most myself only other
    ours ourselves over same should some such than that their theirs them themselves then there these they this
    those through under until very were what when where which while whom will with would your yours yourself
    yourselves thanks thank please hello just still really since because does didn don't can't it's i'm i've
    today yesterday anyone someone something anything know need want like make made getting going help
    """.split()  # noqa: SIM905
)


def redact_text(text: str) -> str:
    """Replace handles and links, which name customers, with placeholders."""
    return _URL.sub("[link]", _HANDLE.sub("@…", text))


def _excerpt(text: str, limit: int = QUOTE_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _split_tags(tags: str) -> list[str]:
    parts = tags.split(",") if "," in tags else tags.split()
    return [p.strip().lower() for p in parts if p.strip()]


def _terms(text: str) -> set[str]:
    cleaned = _URL.sub(" ", _HANDLE.sub(" ", text)).lower()
    return {w.strip("'’-") for w in _WORD.findall(cleaned)} - STOPWORDS


# ---------------------------------------------------------------------------------------------------- builder
class SummaryBuilder:
    """Computes a ShiftSummary from a ShiftRepo; safe to run in a worker thread with its own repository."""

    def __init__(
        self,
        repo: ShiftRepo,
        clock: Clock,
        *,
        hourly_rate: float = 30.0,
        currency: str = "EUR",
        scorer: NetEasyScorer = score_net_easy,
    ) -> None:
        self._repo = repo
        self._clock = clock
        self._rate = hourly_rate
        self._currency = currency
        self._scorer = scorer

    def build(self, shift: ShiftRow, *, redact: bool = False) -> ShiftSummary:
        """Compute the summary of ``shift`` (a running shift is summarised up to now).

        Args:
            shift: the shift.
            redact: replace customer handles and names with stable pseudonyms, strip handles and links from text.
        """
        now = int(self._clock.now())
        start = shift.started_at
        end = shift.ended_at if shift.ended_at is not None else max(start, now)
        repo = self._repo
        agent = shift.agent_name

        events = repo.events_between(start, end)
        head_of = repo.heads_of([e.mention_id for e in events if e.mention_id is not None])
        agent_events = [e for e in events if e.actor == agent and e.actor not in APP_ACTORS]
        sent_in_shift = repo.replies_sent_between(start, end)
        handled = {head_of[e.mention_id] for e in agent_events if e.mention_id in head_of}
        handled |= {r.head_id for r in sent_in_shift if r.purpose in RESPONSE_PURPOSES}
        received = set(repo.heads_received_between(start, end))

        closing: dict[int, tuple[int, MentionStatus]] = {}
        for e in events:
            if e.kind == "status_changed" and e.mention_id in head_of:
                to = _status(e)
                if to in CLOSED:
                    closing[head_of[e.mention_id]] = (e.at, to)
        resolved = set(closing)
        community = {h for h, (_at, to) in closing.items() if to is MentionStatus.COMMUNITY}

        settled = repo.deadlines_settled_between(start, end)
        surveys_sent = repo.surveys_sent_between(start, end)
        candidates = repo.open_head_candidates(end)
        all_ids = sorted(
            received | handled | resolved | set(candidates) | {d.mention_id for d in settled}
            | {s.head_id for s in surveys_sent}
        )  # fmt: skip
        facts = repo.items(all_ids)
        status_at_end = self._statuses_at(all_ids, facts, end)
        open_ids = [
            i for i in candidates if i in facts and facts[i].posted_at <= end and status_at_end.get(i) in OPEN_AT_END
        ]
        item_ids = sorted(received | handled | resolved | set(open_ids) | {d.mention_id for d in settled})

        replies = repo.replies(item_ids)
        responses: dict[int, list[int]] = {}
        for r in replies:
            if r.state == "sent" and r.sent_at is not None and r.sent_at <= end and r.purpose in RESPONSE_PURPOSES:
                responses.setdefault(r.head_id, []).append(r.sent_at)
        deadlines = repo.deadlines(item_ids)
        by_item: dict[int, list[DeadlineRow]] = {}
        for d in deadlines:
            by_item.setdefault(d.mention_id, []).append(d)

        # First response: the met first-response deadline, else the first human reply sent (SLA not running).
        first_at: dict[int, int] = {}
        for mid in item_ids:
            met = [d.met_at for d in by_item.get(mid, ()) if d.kind is DeadlineKind.FIRST_RESPONSE and d.met_at]
            sent = responses.get(mid)
            when = min(met) if met else (min(sent) if sent else None)
            if when is not None:
                first_at[mid] = when
        samples = [
            max(0, first_at[mid] - facts[mid].posted_at)
            for mid in item_ids
            if mid in first_at and start <= first_at[mid] <= end and mid in facts
        ]

        sla, breach_rows = self._sla(settled, start, end)
        handling = self._handling(agent_events, head_of, start)
        single = {h for h in resolved - community if len(responses.get(h, ())) == 1}

        names = _Pseudonyms(facts) if redact else None

        def who(f: ItemFacts) -> str:
            return names.of(f) if names is not None else f"@{f.author_handle}"

        def text(value: str) -> str:
            return redact_text(value) if redact else value

        breaches = [
            Breach(
                mention_id=d.mention_id,
                channel=facts[d.mention_id].channel if d.mention_id in facts else "",
                customer=who(facts[d.mention_id]) if d.mention_id in facts else "",
                kind=d.kind.value,
                due_at=d.due_at,
                breached_at=d.breached_at or d.due_at,
                met_at=d.met_at,
                url="" if redact or d.mention_id not in facts else facts[d.mention_id].url,
                excerpt=_excerpt(text(facts[d.mention_id].text)) if d.mention_id in facts else "",
            )
            for d in breach_rows
        ]

        answered = [s for s in surveys_sent if s.score is not None]
        net_easy = self._scorer(len(surveys_sent), *bucket_scores(s.score for s in answered if s.score is not None))

        channels = self._channels(
            facts, received, handled, resolved, handling, surveys_sent, item_ids=set(received | handled)
        )
        themes = self._themes(facts, sorted(received | handled), text)
        handover = self._handover(open_ids, facts, by_item, status_at_end, end, who, text, redact)
        hours = self._hours(start, end, facts, received, sent_in_shift, settled)

        survey_scores: dict[int, int] = {}
        for s in repo.surveys(item_ids):
            if s.score is not None:
                survey_scores.setdefault(s.head_id, s.score)
        open_set = set(open_ids)
        rows = [
            self._item_row(
                facts[mid], by_item.get(mid, []), status_at_end.get(mid, facts[mid].status), end,
                received_in=mid in received, handled_in=mid in handled, open_at_end=mid in open_set,
                first_at=first_at.get(mid), replies_sent=len(responses.get(mid, ())),
                resolved_at=closing[mid][0] if mid in closing else None, survey=survey_scores.get(mid),
                handling_s=handling.get(mid, 0), who=who, text=text, redact=redact,
            )
            for mid in item_ids
            if mid in facts
        ]  # fmt: skip

        counts = Counts(
            received=len(received),
            handled=len(handled),
            resolved=len(resolved),
            resolved_single_reply=len(single),
            community=len(community),
            still_open=len(open_ids),
            replies_sent=sum(1 for r in sent_in_shift if r.purpose in RESPONSE_PURPOSES),
            surveys_sent=len(surveys_sent),
            surveys_answered=len(answered),
        )
        return ShiftSummary(
            schema=SCHEMA_ID,
            version=SCHEMA_VERSION,
            generated_at=now,
            redacted=redact,
            hourly_rate=self._rate,
            currency=self._currency,
            shift=ShiftInfo(shift.id, agent, start, shift.ended_at, text(shift.notes)),
            counts=counts,
            first_response=first_response_figures(samples),
            sla=sla,
            breaches=breaches,
            net_easy=net_easy,
            channels=channels,
            themes=themes,
            handover=handover,
            hours=hours,
            items=rows,
        )

    # ------------------------------------------------------------------ parts
    def _statuses_at(self, ids: Sequence[int], facts: dict[int, ItemFacts], end: int) -> dict[int, MentionStatus]:
        """Each item's status at ``end``, replayed from the event log (the current status when it has no events)."""
        history = self._repo.status_events(ids)
        out: dict[int, MentionStatus] = {}
        for mid in ids:
            if mid not in facts:
                continue
            events = history.get(mid, [])
            before = [(kind, data) for at, kind, data in events if at <= end]
            after = [data for at, kind, data in events if at > end and kind == "status_changed"]
            if any(kind == "status_changed" for kind, _data in before):
                status = MentionStatus.NEW
                for kind, data in before:
                    if kind == "reopened":
                        status = MentionStatus.OPEN
                    elif kind == "status_changed":
                        status = _status_from(data) or status
                out[mid] = status
            elif after:
                # Changed only after the shift: it was in the first change's "from" state at the end.
                out[mid] = _status_from(after[0], key="from") or facts[mid].status
            else:
                out[mid] = facts[mid].status
        return out

    @staticmethod
    def _sla(settled: Sequence[DeadlineRow], start: int, end: int) -> tuple[list[SlaKind], list[DeadlineRow]]:
        met: Counter[str] = Counter()
        breached: Counter[str] = Counter()
        breach_rows: list[DeadlineRow] = []
        for d in settled:
            outcome = shift_outcome(d, start, end)
            if outcome is None:
                continue
            if outcome[0] == "breached":
                breached[d.kind.value] += 1
                breach_rows.append(d)
            else:
                met[d.kind.value] += 1
        kinds = [k.value for k in DeadlineKind]
        breach_rows.sort(key=lambda d: (d.breached_at or d.due_at, d.id))
        return [sla_kind(k, met[k], breached[k]) for k in kinds], breach_rows

    @staticmethod
    def _handling(agent_events: Sequence[EventRow], head_of: dict[int, int], start: int) -> dict[int, int]:
        """Seconds of agent time per item: each action is credited the gap since the previous one, capped."""
        out: dict[int, int] = {}
        previous = start
        for e in agent_events:
            gap = min(IDLE_CAP_SECONDS, max(0, e.at - previous))
            previous = max(previous, e.at)
            if e.mention_id is not None and e.mention_id in head_of:
                head = head_of[e.mention_id]
                out[head] = out.get(head, 0) + gap
        return out

    def _channels(
        self,
        facts: dict[int, ItemFacts],
        received: set[int],
        handled: set[int],
        resolved: set[int],
        handling: dict[int, int],
        surveys: Sequence[SurveyFacts],
        *,
        item_ids: set[int],
    ) -> list[ChannelFigures]:
        names = sorted({facts[i].channel for i in item_ids if i in facts})
        out: list[ChannelFigures] = []
        for channel in names:
            ids = {i for i in item_ids if i in facts and facts[i].channel == channel}
            res = {i for i in resolved if i in facts and facts[i].channel == channel}
            hand = {i for i in handled if i in facts and facts[i].channel == channel}
            secs = sum(v for k, v in handling.items() if k in facts and facts[k].channel == channel)
            chan_surveys = [s for s in surveys if s.head_id in facts and facts[s.head_id].channel == channel]
            scores = [s.score for s in chan_surveys if s.score is not None]
            out.append(
                ChannelFigures(
                    channel=channel,
                    items=len(ids),
                    unique_customers=len({facts[i].customer_id or -i for i in ids}),
                    received=len(ids & received),
                    handled=len(hand),
                    resolved=len(res),
                    resolution_rate=None if not hand else 100.0 * len(res & hand) / len(hand),
                    handling_s=secs,
                    cost=round(secs / 3600.0 * self._rate, 2),
                    net_easy=self._scorer(len(chan_surveys), *bucket_scores(scores)),
                )
            )
        return out

    @staticmethod
    def _themes(facts: dict[int, ItemFacts], ids: Sequence[int], text: Callable[[str], str]) -> list[Theme]:
        tag_items: dict[str, list[int]] = {}
        term_items: dict[str, list[int]] = {}
        for mid in ids:
            f = facts.get(mid)
            if f is None:
                continue
            for tag in dict.fromkeys(_split_tags(f.tags)):
                tag_items.setdefault(tag, []).append(mid)
            for term in _terms(f.text):
                term_items.setdefault(term, []).append(mid)

        def quotes(mids: list[int]) -> list[str]:
            seen: list[str] = []
            for mid in mids:
                q = _excerpt(text(facts[mid].text))
                if q and q not in seen:
                    seen.append(q)
                if len(seen) == 2:
                    break
            return seen

        themes = [Theme("tag", t, len(m), quotes(m)) for t, m in tag_items.items()]
        themes.sort(key=lambda t: (-t.count, t.label))
        terms = [Theme("term", t, len(m), quotes(m)) for t, m in term_items.items() if len(m) >= 2]
        terms.sort(key=lambda t: (-t.count, t.label))
        return themes[:TOP_THEMES] + terms[:TOP_THEMES]

    def _handover(
        self,
        open_ids: Sequence[int],
        facts: dict[int, ItemFacts],
        by_item: dict[int, list[DeadlineRow]],
        status_at_end: dict[int, MentionStatus],
        end: int,
        who: Callable[[ItemFacts], str],
        text: Callable[[str], str],
        redact: bool,
    ) -> list[HandoverItem]:
        last = self._repo.last_messages(open_ids, end)
        out: list[HandoverItem] = []
        for mid in open_ids:
            f = facts[mid]
            running: list[DeadlineState] = []
            for d in by_item.get(mid, ()):
                if d.started_at > end or (d.met_at is not None and d.met_at <= end):
                    continue
                if d.cancelled_at is not None and d.cancelled_at <= end:
                    continue
                if d.breached_at is not None and d.breached_at <= end:
                    state = "breached"
                elif d.paused_at is not None and d.paused_at <= end:
                    state = "paused"
                else:
                    state = "running"
                running.append(DeadlineState(d.kind.value, d.due_at, state))
            message = last.get(mid)
            out.append(
                HandoverItem(
                    mention_id=mid,
                    channel=f.channel,
                    customer=who(f),
                    status=status_at_end.get(mid, f.status).value,
                    priority=f.priority,
                    tags=f.tags,
                    received_at=f.posted_at,
                    deadlines=running,
                    last_message_at=message.at if message else f.posted_at,
                    last_message_from="customer" if message is None or message.from_customer else "agent",
                    last_message=_excerpt(text(message.text if message else f.text), 280),
                    url="" if redact else f.url,
                )
            )
        out.sort(key=lambda h: (min((d.due_at for d in h.deadlines), default=2**62), h.mention_id))
        return out

    @staticmethod
    def _hours(
        start: int,
        end: int,
        facts: dict[int, ItemFacts],
        received: set[int],
        sent: Sequence[SentReply],
        settled: Sequence[DeadlineRow],
    ) -> list[HourBucket]:
        first = start - start % 3600
        count = max(1, (end - first) // 3600 + 1)
        if count > 24 * 14:  # a forgotten shift: keep the chart readable and the file small
            first = end - end % 3600 - (24 * 14 - 1) * 3600
            count = 24 * 14
        rec = [0] * count
        rep = [0] * count
        met = [0] * count
        brc = [0] * count

        def slot(at: int) -> int | None:
            i = (at - first) // 3600
            return i if 0 <= i < count else None

        for mid in received:
            if mid in facts and (i := slot(facts[mid].posted_at)) is not None:
                rec[i] += 1
        for r in sent:
            if r.sent_at is not None and r.purpose in RESPONSE_PURPOSES and (i := slot(r.sent_at)) is not None:
                rep[i] += 1
        for d in settled:
            outcome = shift_outcome(d, start, end)
            if outcome is None or (i := slot(outcome[1])) is None:
                continue
            if outcome[0] == "breached":
                brc[i] += 1
            else:
                met[i] += 1
        return [HourBucket(first + i * 3600, rec[i], rep[i], met[i], brc[i]) for i in range(count)]

    @staticmethod
    def _item_row(
        f: ItemFacts,
        deadlines: Sequence[DeadlineRow],
        status: MentionStatus,
        end: int,
        *,
        received_in: bool,
        handled_in: bool,
        open_at_end: bool,
        first_at: int | None,
        replies_sent: int,
        resolved_at: int | None,
        survey: int | None,
        handling_s: int,
        who: Callable[[ItemFacts], str],
        text: Callable[[str], str],
        redact: bool,
    ) -> ItemRow:
        def result(kind: DeadlineKind) -> str:
            mine = [d for d in deadlines if d.kind is kind and d.started_at <= end]
            if not mine:
                return ""
            if any(d.breached_at is not None and d.breached_at <= end for d in mine):
                return "breached"
            if all(d.met_at is not None and d.met_at <= end for d in mine):
                return "met"
            if all(d.cancelled_at is not None or (d.met_at is not None and d.met_at <= end) for d in mine):
                return "stopped"
            if any(d.paused_at is not None for d in mine):
                return "paused"
            return "running"

        return ItemRow(
            mention_id=f.id,
            channel=f.channel,
            customer=who(f),
            received_at=f.posted_at,
            status=status.value,
            priority=f.priority,
            tags=f.tags,
            first_contact=f.is_first_contact,
            messages=f.message_count,
            received_in_shift=received_in,
            handled_in_shift=handled_in,
            open_at_end=open_at_end,
            first_response_at=first_at,
            first_response_s=None if first_at is None else max(0, first_at - f.posted_at),
            replies_sent=replies_sent,
            resolved_at=resolved_at,
            sla_first_response=result(DeadlineKind.FIRST_RESPONSE),
            sla_next_response=result(DeadlineKind.NEXT_RESPONSE),
            sla_follow_up=result(DeadlineKind.FOLLOW_UP),
            sla_resolution=result(DeadlineKind.RESOLUTION),
            breaches=sum(1 for d in deadlines if d.breached_at is not None and d.breached_at <= end),
            survey_score=survey,
            handling_s=handling_s,
            url="" if redact else f.url,
            text=text(f.text),
        )


class _Pseudonyms:
    """Stable per-summary customer pseudonyms ("customer 1", …) in order of first contact."""

    def __init__(self, facts: dict[int, ItemFacts]) -> None:
        self._ids: dict[object, int] = {}
        for f in sorted(facts.values(), key=lambda f: (f.posted_at, f.id)):
            self._ids.setdefault(self._key(f), len(self._ids) + 1)

    @staticmethod
    def _key(f: ItemFacts) -> object:
        return f.customer_id if f.customer_id is not None else (f.channel, f.author_handle)

    def of(self, f: ItemFacts) -> str:
        return f"customer {self._ids.get(self._key(f), 0)}"


def _status_from(data: str, *, key: str = "to") -> MentionStatus | None:
    try:
        value = json.loads(data).get(key)
        return MentionStatus(value)
    except (ValueError, AttributeError, TypeError):
        return None


def _status(event: EventRow) -> MentionStatus | None:
    return _status_from(event.data)


def without_items(summary: ShiftSummary) -> ShiftSummary:
    """The summary without its per-item rows (for previews)."""
    return replace(summary, items=[])
