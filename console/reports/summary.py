"""The shift summary: a versioned, self-contained record computed from the tables and the event log."""

from __future__ import annotations

import hashlib
import math
import re
import statistics
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Protocol

from console.model import event_data
from console.ports import Clock
from console.sla.calendar import Calendar, elapsed_running
from console.sla.policy import PolicySet
from console.surveys.net_easy import MIN_N, adjusted_wald
from console.sync.manual import MANUAL_ACTOR
from storage.rows import DeadlineKind, DeadlineRow, EventRow, MentionStatus
from storage.shifts import ItemFacts, LastMessage, SentReply, ShiftRow, SurveyFacts

SCHEMA_ID = "care-console/shift-summary"
#: 2: inherited breaches (SlaKind.inherited, Breach.inherited), business-time first responses, stable customer
#: keys (ItemRow.customer_key, ChannelFigures.customer_keys), ItemRow.reopened. Version 1 files still load.
SCHEMA_VERSION = 2

#: Actors that are the app, not the agent (brief: "sync", "sla", "outbox").
APP_ACTORS = frozenset({"sync", "sla", "outbox", MANUAL_ACTOR})
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
    #: The same responses in business time: only the open hours of ``business_calendar`` count.
    business_median_s: float | None = None
    business_p90_s: float | None = None
    business_mean_s: float | None = None
    business_samples_s: list[int] = field(default_factory=list)
    business_calendar: str = ""


@dataclass(frozen=True)
class SlaKind:
    kind: str
    met: int
    #: Every breach the shift dealt with, the ``inherited`` ones (breached before the shift started) included.
    breached: int
    met_pct: float | None
    inherited: int = 0


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
    #: Breached before the shift started (an overnight backlog): the shift inherited it.
    inherited: bool = False


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
    #: Stable keys of the channel's customers (``customer_key``), so that a merge counts each customer once.
    customer_keys: list[str] = field(default_factory=list)


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
    #: The same customer has the same key in every shift and on every agent's machine (see ``customer_key``).
    customer_key: str = field(default="", kw_only=True)
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
    #: The first response time counting only the business calendar's open hours.
    first_response_business_s: int | None = field(default=None, kw_only=True)
    replies_sent: int
    resolved_at: int | None
    #: Reopened (by the customer or the agent) after it was resolved, by the end of the shift.
    reopened: bool = field(default=False, kw_only=True)
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
class AuditEntry:
    """One audited action of the period (issue 23): a claim, release, reassignment, hand-over or "send anyway".

    Team reports list them so that who did what to which item, and when, is on the record; a solo shift has none.
    """

    at: int
    actor: str
    kind: str
    #: The item's number in this summary (0 for an action about several items, such as a hand-over).
    mention_id: int
    channel: str
    #: In plain words ("Reassigned to Sam · back from holiday"), the same wording the conversation's history uses.
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
    #: Audited team actions (claims, releases, reassignments, hand-overs, "send anyway"); empty for a solo shift.
    audit: list[AuditEntry] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, int, int]:
        """Identity for de-duplication in reviews: the same shift loaded twice has the same key."""
        return (self.shift.agent, self.shift.id, self.shift.started_at)


# ---------------------------------------------------------------------------------------------------- Net Easy
NetEasyScorer = Callable[[int, int, int, int], NetEasy]
"""(sent, easy, neutral, difficult) -> NetEasy: the seam for console/surveys/net_easy.py (``score_net_easy``)."""


def score_net_easy(sent: int, easy: int, neutral: int, difficult: int) -> NetEasy:
    """Net Easy = 100 × (easy − difficult) / n with the 95% adjusted-Wald interval of console/surveys/net_easy.py.

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


def _figures(samples: Sequence[int]) -> tuple[list[int], float | None, float | None, float | None]:
    ordered = sorted(samples)
    if not ordered:
        return ordered, None, None, None
    median = float(statistics.median(ordered))
    return ordered, median, round(percentile(ordered, 0.9) or 0.0, 1), float(statistics.fmean(ordered))


def first_response_figures(
    samples: Sequence[int], business: Sequence[int] | None = None, *, calendar: str = ""
) -> FirstResponse:
    """Median, p90 and mean of first-response times, in calendar time and (``business``) in business time."""
    ordered, median, p90, mean = _figures(samples)
    b_ordered, b_median, b_p90, b_mean = _figures(business or ())
    return FirstResponse(
        n=len(ordered), median_s=median, p90_s=p90, mean_s=mean, samples_s=ordered,
        business_median_s=b_median, business_p90_s=b_p90, business_mean_s=b_mean, business_samples_s=b_ordered,
        business_calendar=calendar,
    )  # fmt: skip


def breached_by(d: DeadlineRow, end: int) -> int | None:
    """When ``d`` was breached, if it was by ``end``; None if it was not (or not yet).

    A reply in the due second itself meets the deadline (reference/metrics.md: "Breach = the deadline passes
    unmet"), so a deadline met at or before ``due_at`` is never breached, whatever the sweeper wrote. A due
    time that passed unmet counts as a breach at ``due_at`` even when the sweeper has not recorded it yet (the
    app was closed), so that a late first response never sits beside "0 breaches".
    """
    if d.met_at is not None and d.met_at <= d.due_at:
        return None
    if d.breached_at is not None:
        return d.breached_at if d.breached_at <= end else None
    stopped = [t for t in (d.met_at, d.cancelled_at, d.paused_at) if t is not None]
    if stopped and min(stopped) <= d.due_at:
        return None
    return d.due_at if d.due_at < end and d.started_at <= end else None


def settled_before(d: DeadlineRow, start: int) -> bool:
    """Met or stopped before the shift started: the shift had nothing to do with it."""
    return (d.met_at is not None and d.met_at < start) or (d.cancelled_at is not None and d.cancelled_at < start)


def shift_outcome(d: DeadlineRow, start: int, end: int) -> tuple[str, int] | None:
    """What a deadline counts as in a shift: ("breached" | "inherited" | "met", when), or None if not this shift's.

    A breach counts in the shift it happened in. A deadline breached before the shift started and still
    running when it started (an overnight backlog) is one the shift dealt with: it counts as a breach,
    "inherited", whenever it is met. A deadline met in the shift without a breach counts as met.
    """
    breached = breached_by(d, end)
    if breached is not None:
        if breached >= start:
            return "breached", breached
        return None if settled_before(d, start) else ("inherited", breached)
    if d.met_at is not None and start <= d.met_at <= end:
        return "met", d.met_at
    return None


def customer_key(channel: str, external_id: str, handle: str) -> str:
    """A stable, opaque key for a customer: the same on every shift and every agent's machine.

    It is a hash of the channel and the customer's id there (the handle when the id is unknown), so that a
    supervisor's merge counts unique customers across shifts without the export naming anyone.
    """
    who = external_id or handle.lower()
    return "c-" + hashlib.sha256(f"{channel}\x00{who}".encode()).hexdigest()[:16]


def _key_of(f: ItemFacts) -> str:
    return customer_key(f.channel, f.customer_external_id, f.author_handle)


def sla_kind(kind: str, met: int, breached: int, inherited: int = 0) -> SlaKind:
    total = met + breached
    return SlaKind(kind, met, breached, None if total == 0 else 100.0 * met / total, inherited)


_HANDLE = re.compile(r"@[\w.+-]+(?:@[\w.-]+)?")
_URL = re.compile(r"https?://\S+")
_WORD = re.compile(r"[^\W\d_][\w'’-]{3,}", re.UNICODE)
#: Words every language's customers use that say nothing about a theme: greetings, thanks, care-desk chatter.
#: The function words of each language come from stopwords-iso (``stopwordsiso``), for the languages found.
CHATTER = frozenset(
    """
    thanks thank please hello today yesterday anyone someone something anything know need want like make made
    getting going help still really just danke dank dankeschön bitte hallo hilfe heute merci bonjour salut
    aide gracias hola ayuda grazie ciao aiuto obrigado obrigada olá ajuda bedankt dankjewel alstublieft hoi
    tack takk tusen kiitos dziękuję proszę dzięki спасибо пожалуйста привет здравствуйте teşekkürler lütfen
    merhaba
    """.split()  # noqa: SIM905
)
#: Care vocabulary that generic stop-word lists drop ("order" is an English stop word there) but is a theme here.
THEME_WORDS = frozenset({"order", "orders", "ordered"})
#: A message is taken to be in a language when at least this many of its words are that language's stop words.
LANGUAGE_MIN_HITS = 2
_LETTERS = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)


def redact_text(text: str) -> str:
    """Replace handles and links, which name customers, with placeholders."""
    return _URL.sub("[link]", _HANDLE.sub("@…", text))


def _excerpt(text: str, limit: int = QUOTE_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _split_tags(tags: str) -> list[str]:
    parts = tags.split(",") if "," in tags else tags.split()
    return [p.strip().lower() for p in parts if p.strip()]


def _clean(text: str) -> str:
    return _URL.sub(" ", _HANDLE.sub(" ", text)).lower()


def _terms(text: str, stopwords: frozenset[str]) -> set[str]:
    return {w.strip("'’-") for w in _WORD.findall(_clean(text))} - stopwords


@cache
def _stopword_languages() -> dict[str, frozenset[str]]:
    """word -> the languages (ISO 639-1) whose stop-word list holds it; loaded on the first summary."""
    import stopwordsiso  # a 300 kB JSON: read when themes are first computed, not at start-up

    index: dict[str, set[str]] = {}
    for lang in sorted(stopwordsiso.langs()):
        for word in stopwordsiso.stopwords(lang):
            index.setdefault(word.lower(), set()).add(lang)
    return {word: frozenset(langs) for word, langs in index.items()}


def customer_languages(texts: Iterable[str]) -> list[str]:
    """The languages the customers write in, found by their stop words (the classic stop-word method).

    Each message votes for the languages with the most of its words on their stop-word list (at least
    ``LANGUAGE_MIN_HITS``); among tied languages the one most messages chose wins. English is always included.
    """
    index = _stopword_languages()
    candidates: list[set[str]] = []
    votes: Counter[str] = Counter()
    for text in texts:
        hits: Counter[str] = Counter()
        for word in _LETTERS.findall(_clean(text)):
            hits.update(index.get(word, ()))
        best = max(hits.values(), default=0)
        if best >= LANGUAGE_MIN_HITS:
            tied = {lang for lang, n in hits.items() if n == best}
            candidates.append(tied)
            votes.update(tied)
    chosen = {"en"}
    for tied in candidates:
        chosen.add(max(sorted(tied), key=lambda lang: votes[lang]))
    return sorted(chosen)


def theme_stopwords(languages: Iterable[str]) -> frozenset[str]:
    """The stop words of every one of ``languages``, plus chatter, minus care vocabulary (``THEME_WORDS``)."""
    wanted = set(languages)
    words = {word for word, langs in _stopword_languages().items() if langs & wanted}
    return frozenset((words | CHATTER) - THEME_WORDS)


# ---------------------------------------------------------------------------------------------------- builder
class SummaryFacts(Protocol):
    """The reads a summary is computed from: storage.shifts.ShiftRepo on the local file, or a team period's log
    (console/reports/team.py), so that a team report is the same computation as a shift summary."""

    def events_between(self, start: int, end: int) -> list[EventRow]: ...
    def heads_of(self, mention_ids: Sequence[int]) -> dict[int, int]: ...
    def replies_sent_between(self, start: int, end: int) -> list[SentReply]: ...
    def heads_received_between(self, start: int, end: int) -> list[int]: ...
    def deadlines_settled_between(self, start: int, end: int) -> list[DeadlineRow]: ...
    def surveys_sent_between(self, start: int, end: int) -> list[SurveyFacts]: ...
    def open_head_candidates(self, end: int) -> list[int]: ...
    def items(self, ids: Sequence[int]) -> dict[int, ItemFacts]: ...
    def status_events(self, ids: Sequence[int]) -> dict[int, list[tuple[int, str, str]]]: ...
    def replies(self, ids: Sequence[int]) -> list[SentReply]: ...
    def deadlines(self, ids: Sequence[int]) -> list[DeadlineRow]: ...
    def surveys(self, ids: Sequence[int]) -> list[SurveyFacts]: ...
    def last_messages(self, ids: Sequence[int], end: int) -> dict[int, LastMessage]: ...


class SummaryBuilder:
    """Computes a ShiftSummary from a ShiftRepo; safe to run in a worker thread with its own repository."""

    def __init__(
        self,
        repo: SummaryFacts,
        clock: Clock,
        *,
        hourly_rate: float = 30.0,
        currency: str = "EUR",
        scorer: NetEasyScorer = score_net_easy,
        business: tuple[str, Calendar] | None = None,
    ) -> None:
        """``business``: the named calendar first responses are also measured in (default: the shipped policy's)."""
        self._repo = repo
        self._clock = clock
        self._rate = hourly_rate
        self._currency = currency
        self._scorer = scorer
        self._business = business

    def _business_calendar(self) -> tuple[str, Calendar]:
        if self._business is None:
            from console.sla.policy import shipped_policy  # reads resources: only when no calendar was given

            self._business = business_calendar(shipped_policy())
        return self._business

    def build(self, shift: ShiftRow, *, redact: bool = False, agents: Collection[str] | None = None) -> ShiftSummary:
        """Compute the summary of ``shift`` (a running shift is summarised up to now).

        Args:
            shift: the shift.
            redact: replace customer handles and names with stable pseudonyms, strip handles and links from text.
            agents: whose actions count as the shift's work (default: the shift's agent only); a team report
                passes the agents it covers.
        """
        now = int(self._clock.now())
        start = shift.started_at
        end = shift.ended_at if shift.ended_at is not None else max(start, now)
        repo = self._repo
        agent = shift.agent_name

        events = repo.events_between(start, end)
        head_of = repo.heads_of([e.mention_id for e in events if e.mention_id is not None])
        actors = frozenset(agents) if agents is not None else frozenset({agent})
        agent_events = [e for e in events if e.actor in actors and e.actor not in APP_ACTORS]
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

        settled = repo.deadlines_settled_between(start, end)
        surveys_sent = repo.surveys_sent_between(start, end)
        candidates = repo.open_head_candidates(end)
        all_ids = sorted(
            received | handled | set(closing) | set(candidates) | {d.mention_id for d in settled}
            | {s.head_id for s in surveys_sent}
        )  # fmt: skip
        facts = repo.items(all_ids)
        history = repo.status_events(all_ids)
        status_at_end = self._statuses_at(all_ids, facts, end, history)
        reopened = {mid for mid in all_ids if _reopened(history.get(mid, []), end)}
        open_ids = [
            i for i in candidates if i in facts and facts[i].posted_at <= end and status_at_end.get(i) in OPEN_AT_END
        ]
        # The item's state at the end of the shift decides: resolved, then reopened by the customer, is open.
        resolved = {h for h in closing if status_at_end.get(h) in CLOSED}
        community = {h for h in resolved if status_at_end.get(h) is MentionStatus.COMMUNITY}
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
        calendar_name, calendar = self._business_calendar()
        business_s = {
            mid: elapsed_running(calendar, facts[mid].posted_at, when) for mid, when in first_at.items() if mid in facts
        }
        in_shift = [mid for mid in item_ids if mid in first_at and start <= first_at[mid] <= end and mid in facts]
        samples = [max(0, first_at[mid] - facts[mid].posted_at) for mid in in_shift]
        business_samples = [business_s[mid] for mid in in_shift]

        sla, breach_rows = self._sla(deadlines, start, end)
        handling = self._handling(agent_events, head_of, start)
        # "Resolved in a single interaction": resolved at the end, never reopened, exactly one human reply.
        single = {h for h in resolved - community if len(responses.get(h, ())) == 1 and h not in reopened}

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
                breached_at=when,
                met_at=d.met_at if d.met_at is not None and d.met_at <= end else None,
                url="" if redact or d.mention_id not in facts else facts[d.mention_id].url,
                excerpt=_excerpt(text(facts[d.mention_id].text)) if d.mention_id in facts else "",
                inherited=outcome == "inherited",
            )
            for d, outcome, when in breach_rows
        ]

        answered = [s for s in surveys_sent if s.score is not None]
        net_easy = self._scorer(len(surveys_sent), *bucket_scores(s.score for s in answered if s.score is not None))

        channels = self._channels(
            facts, received, handled, resolved, handling, surveys_sent, item_ids=set(received | handled)
        )
        themes = self._themes(facts, sorted(received | handled), text)
        handover = self._handover(open_ids, facts, by_item, status_at_end, end, who, text, redact)
        hours = self._hours(start, end, facts, received, sent_in_shift, deadlines)

        survey_scores: dict[int, int] = {}
        for s in repo.surveys(item_ids):
            if s.score is not None:
                survey_scores.setdefault(s.head_id, s.score)
        open_set = set(open_ids)
        rows = [
            self._item_row(
                facts[mid], by_item.get(mid, []), status_at_end.get(mid, facts[mid].status), start, end,
                received_in=mid in received, handled_in=mid in handled, open_at_end=mid in open_set,
                first_at=first_at.get(mid), first_business_s=business_s.get(mid),
                replies_sent=len(responses.get(mid, ())),
                resolved_at=closing[mid][0] if mid in resolved else None, reopened=mid in reopened,
                survey=survey_scores.get(mid), handling_s=handling.get(mid, 0), who=who, text=text, redact=redact,
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
            first_response=first_response_figures(samples, business_samples, calendar=calendar_name),
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
    @staticmethod
    def _statuses_at(
        ids: Sequence[int], facts: dict[int, ItemFacts], end: int, history: dict[int, list[tuple[int, str, str]]]
    ) -> dict[int, MentionStatus]:
        """Each item's status at ``end``, replayed from the event log (the current status when it has no events)."""
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
    def _sla(
        deadlines: Sequence[DeadlineRow], start: int, end: int
    ) -> tuple[list[SlaKind], list[tuple[DeadlineRow, str, int]]]:
        """Met and breached (inherited included) per kind, and the breaches as (deadline, outcome, when)."""
        met: Counter[str] = Counter()
        breached: Counter[str] = Counter()
        inherited: Counter[str] = Counter()
        breach_rows: list[tuple[DeadlineRow, str, int]] = []
        for d in deadlines:
            outcome = shift_outcome(d, start, end)
            if outcome is None:
                continue
            if outcome[0] == "met":
                met[d.kind.value] += 1
                continue
            breached[d.kind.value] += 1
            if outcome[0] == "inherited":
                inherited[d.kind.value] += 1
            breach_rows.append((d, outcome[0], outcome[1]))
        kinds = [k.value for k in DeadlineKind]
        breach_rows.sort(key=lambda row: (row[2], row[0].id))
        return [sla_kind(k, met[k], breached[k], inherited[k]) for k in kinds], breach_rows

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
            keys = sorted({_key_of(facts[i]) for i in ids})
            res = {i for i in resolved if i in facts and facts[i].channel == channel}
            hand = {i for i in handled if i in facts and facts[i].channel == channel}
            secs = sum(v for k, v in handling.items() if k in facts and facts[k].channel == channel)
            chan_surveys = [s for s in surveys if s.head_id in facts and facts[s.head_id].channel == channel]
            scores = [s.score for s in chan_surveys if s.score is not None]
            out.append(
                ChannelFigures(
                    channel=channel,
                    items=len(ids),
                    unique_customers=len(keys),
                    received=len(ids & received),
                    handled=len(hand),
                    resolved=len(res),
                    resolution_rate=None if not hand else 100.0 * len(res & hand) / len(hand),
                    handling_s=secs,
                    cost=round(secs / 3600.0 * self._rate, 2),
                    net_easy=self._scorer(len(chan_surveys), *bucket_scores(scores)),
                    customer_keys=keys,
                )
            )
        return out

    @staticmethod
    def _themes(facts: dict[int, ItemFacts], ids: Sequence[int], text: Callable[[str], str]) -> list[Theme]:
        tag_items: dict[str, list[int]] = {}
        term_items: dict[str, list[int]] = {}
        known = [facts[mid] for mid in ids if mid in facts]
        stopwords = theme_stopwords(customer_languages(f.text for f in known)) if known else frozenset()
        for f in known:
            for tag in dict.fromkeys(_split_tags(f.tags)):
                tag_items.setdefault(tag, []).append(f.id)
            for term in _terms(f.text, stopwords):
                term_items.setdefault(term, []).append(f.id)

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
        # Agents' tags first; a term that repeats a tag is that theme already.
        terms = [
            Theme("term", t, len(m), quotes(m)) for t, m in term_items.items() if len(m) >= 2 and t not in tag_items
        ]
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
                if breached_by(d, end) is not None:
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
        deadlines: Sequence[DeadlineRow],
    ) -> list[HourBucket]:
        """Per hour: received, replies, deadlines met and breached (inherited breaches in the first hour)."""
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
        for d in deadlines:
            outcome = shift_outcome(d, start, end)
            if outcome is None:
                continue
            i = 0 if outcome[0] == "inherited" else slot(outcome[1])
            if i is None:
                continue
            if outcome[0] != "met":
                brc[i] += 1
            else:
                met[i] += 1
        return [HourBucket(first + i * 3600, rec[i], rep[i], met[i], brc[i]) for i in range(count)]

    @staticmethod
    def _item_row(
        f: ItemFacts,
        deadlines: Sequence[DeadlineRow],
        status: MentionStatus,
        start: int,
        end: int,
        *,
        received_in: bool,
        handled_in: bool,
        open_at_end: bool,
        first_at: int | None,
        first_business_s: int | None,
        replies_sent: int,
        resolved_at: int | None,
        reopened: bool,
        survey: int | None,
        handling_s: int,
        who: Callable[[ItemFacts], str],
        text: Callable[[str], str],
        redact: bool,
    ) -> ItemRow:
        # Only the deadlines this shift counts: those met or stopped before it started are history.
        counted = [d for d in deadlines if d.started_at <= end and not settled_before(d, start)]

        def result(kind: DeadlineKind) -> str:
            if not any(d.kind is kind and d.started_at <= end for d in deadlines):
                return ""
            mine = [d for d in counted if d.kind is kind]
            if not mine:
                return "before the shift"
            if any(breached_by(d, end) is not None for d in mine):
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
            customer_key=_key_of(f),
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
            first_response_business_s=first_business_s,
            replies_sent=replies_sent,
            resolved_at=resolved_at,
            reopened=reopened,
            sla_first_response=result(DeadlineKind.FIRST_RESPONSE),
            sla_next_response=result(DeadlineKind.NEXT_RESPONSE),
            sla_follow_up=result(DeadlineKind.FOLLOW_UP),
            sla_resolution=result(DeadlineKind.RESOLUTION),
            breaches=sum(1 for d in counted if breached_by(d, end) is not None),
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
    value = event_data(data).get(key)
    try:
        return MentionStatus(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _status(event: EventRow) -> MentionStatus | None:
    return _status_from(event.data)


def _reopened(history: Sequence[tuple[int, str, str]], end: int) -> bool:
    """Whether an item was reopened after being closed, by ``end`` (a customer's message or the agent)."""
    answers = set()  # customer messages that only answered our survey: they reopen nothing (SlaEngine alike)
    for _at, kind, data in history:
        if kind == "survey_answered":
            fields = event_data(data)
            if not fields.get("question"):
                answers.add(fields.get("message"))
    closed = False
    for at, kind, data in history:
        if at > end:
            break
        if kind == "reopened" and event_data(data).get("by_message") not in answers:
            return True
        if kind == "status_changed":
            to = _status_from(data)
            if to in CLOSED:
                closed = True
            elif closed and to is not None:
                return True
    return False


def business_calendar(policies: PolicySet) -> tuple[str, Calendar]:
    """The calendar "business time" is measured in: the one named "business", else the default rule's."""
    if "business" in policies.calendars:
        return "business", policies.calendars["business"]
    name = policies.rules[-1].calendar
    return name, policies.calendars[name]


def without_items(summary: ShiftSummary) -> ShiftSummary:
    """The summary without its per-item rows (for previews)."""
    return replace(summary, items=[])
