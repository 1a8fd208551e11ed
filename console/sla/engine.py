"""The SLA engine: derives every item's deadlines from its event log under the current policy, and keeps them.

Rules (reference/metrics.md §4 and "Recommended definitions" 5; DESIGN.md "SLA"):

- Clocks start at the customer's post time: first response and resolution at "received", next response at the
  first customer follow-up that has no response pending (the oldest unanswered message).
- "Waiting on customer" pauses next response and resolution, never first response; leaving it resumes them.
- Resolve / answered by community meets resolution and stops the other clocks; spam stops all of them.
- A customer message on a closed or waiting item reopens it (MentionRepo.store_batch logs "reopened") and starts
  next response; a reopened closed item gets a fresh resolution clock (it does not escalate at once).
- Only a human-written, customer-visible reply ("responded" with human=true) meets first/next response and a
  pending follow-up commitment; a holding reply also opens a follow-up commitment due when promised. A promise
  already past when the reply went out (a holding reply after a late first response, or one that waited in the
  outbox) is counted from the send by the policy's follow-up window (its next-response target), never due at
  once.
- A reply at or before the due second meets the deadline; the breach is recorded only once the due second has
  passed, once, with its cause; overdue time keeps counting; it stays on record. Whichever runs first (the
  sweeper or the reply's record), a reply stamped within the due second wins: a breach the sweeper recorded
  for it is withdrawn, so the outcome never depends on timing.
- A policy change recomputes the deadlines still running; met, cancelled and breached deadlines keep their times.

The live engine and a recomputation share one code path: every change appends events, replays the item's log
(``replay``) and reconciles the stored deadlines with the result, so "recompute from the log" is the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from console.model import SyncReport, event_data
from console.ports import Clock
from console.sla.calendar import Calendar, Pause, elapsed_running, is_open, next_open
from console.sla.policy import DeadlinePlan, PolicyError, PolicySet, follow_up_plan, shipped_policy
from storage.deadlines import Breach, DeadlineRepo, DeadlineValues, HeadInfo, NewEvent
from storage.rows import DeadlineKind, DeadlineRow, EventRow, MentionStatus
from storage.settings import SLA_POLICIES, SettingsRepo

log = logging.getLogger(__name__)

RESPONSE_KINDS = (DeadlineKind.FIRST_RESPONSE, DeadlineKind.NEXT_RESPONSE)
#: "Waiting on customer" pauses these, never first response (nor a promise we made).
PAUSABLE = (DeadlineKind.NEXT_RESPONSE, DeadlineKind.RESOLUTION)
CLOSED = (MentionStatus.RESOLVED, MentionStatus.COMMUNITY, MentionStatus.SPAM)
#: Reply purposes (replies.purpose) that are human-written answers to the customer.
HUMAN_PURPOSES = frozenset({"reply", "holding", "correction"})
#: The engine's own event: a reply reached the customer. data: {human, holding_until}.
RESPONDED = "responded"
ACTOR = "sla"
#: A follow-up promised for a time already past at the send is due within this target's time from the send.
FOLLOW_UP_WINDOW = DeadlineKind.NEXT_RESPONSE

_KIND_TEXT = {
    DeadlineKind.FIRST_RESPONSE: "first response",
    DeadlineKind.NEXT_RESPONSE: "next response",
    DeadlineKind.RESOLUTION: "resolution",
    DeadlineKind.FOLLOW_UP: "follow-up commitment",
}


@dataclass(frozen=True, slots=True)
class PlannedDeadline:
    """One deadline as the rules derive it from the log."""

    kind: DeadlineKind
    started_at: int
    due_at: int
    warn_at: int
    met_at: int | None = None
    paused_at: int | None = None
    cancelled_at: int | None = None
    resumed_at: int | None = None
    paused_seconds: int = 0

    @property
    def running(self) -> bool:
        return self.met_at is None and self.cancelled_at is None


@dataclass(slots=True)
class _Clock:
    kind: DeadlineKind
    started_at: int
    promised: int | None = None
    met_at: int | None = None
    cancelled_at: int | None = None
    pauses: list[list[int | None]] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.met_at is None and self.cancelled_at is None

    @property
    def paused(self) -> bool:
        return bool(self.pauses) and self.pauses[-1][1] is None

    def pause(self, at: int) -> None:
        if self.running and not self.paused:
            self.pauses.append([at, None])

    def resume(self, at: int) -> None:
        if self.paused:
            self.pauses[-1][1] = max(at, int(self.pauses[-1][0] or 0))


def _bare_survey_answers(events: Sequence[EventRow]) -> set[int]:
    """Ids of customer messages logged as survey answers that ask nothing new (``survey_answered`` events)."""
    out: set[int] = set()
    for event in events:
        if event.kind == "survey_answered":
            data = event_data(event.data)
            message = data.get("message")
            if isinstance(message, int) and not data.get("question"):
                out.add(message)
    return out


def _without_undone(events: Sequence[EventRow]) -> list[EventRow]:
    """The log as if each undone status change never happened: an ``undo`` status change and the change it
    reverted (the latest earlier one with the opposite from/to) both drop out of the replay. Undo then
    restores every clock exactly as it was (issue 19 #4): a resolved breach comes back breached with its own
    due time, not "cancelled" beside a fresh 24-hour clock. The events stay in the log (append-only)."""
    dropped: set[int] = set()
    for index, event in enumerate(events):
        if event.kind != "status_changed":
            continue
        data = event_data(event.data)
        if not data.get("undo"):
            continue
        for earlier in range(index - 1, -1, -1):
            candidate = events[earlier]
            if earlier in dropped or candidate.kind != "status_changed":
                continue
            before = event_data(candidate.data)
            if before.get("undo"):
                continue
            if before.get("from") == data.get("to") and before.get("to") == data.get("from"):
                dropped.update((earlier, index))
            break  # only the latest status change can be the one undone
    return [event for index, event in enumerate(events) if index not in dropped]


def replay(events: Sequence[EventRow], head: HeadInfo, policies: PolicySet) -> list[PlannedDeadline]:
    """Derive an item's deadlines from its event log (oldest first) under ``policies``.

    Args:
        events: the item's events ordered by time, then insertion.
        head: the item (channel and current priority select the policy).
        policies: the policy set in force.

    Returns:
        Every deadline the item has had, in start order.
    """
    events = _without_undone(events)
    clocks: list[_Clock] = []
    status = MentionStatus.NEW

    def running(kind: DeadlineKind) -> _Clock | None:
        return next((c for c in reversed(clocks) if c.kind is kind and c.running), None)

    def start(kind: DeadlineKind, at: int, promised: int | None = None) -> None:
        clocks.append(_Clock(kind, at, promised))

    def close(at: int, *, resolved: bool) -> None:
        for c in clocks:
            if c.running:
                c.resume(at)
                if resolved and c.kind is DeadlineKind.RESOLUTION:
                    c.met_at = at
                else:
                    c.cancelled_at = at

    def resume_all(at: int) -> None:
        for c in clocks:
            if c.running:
                c.resume(at)

    # A customer message that only answered our survey ("2") owes no reply: it neither reopens the item nor
    # starts a next response. One that also asks something new (``question``) is an ordinary follow-up.
    answers_only = _bare_survey_answers(events)
    if not any(e.kind == "received" for e in events):
        start(DeadlineKind.FIRST_RESPONSE, head.posted_at)
        start(DeadlineKind.RESOLUTION, head.posted_at)
    for event in events:
        at = event.at
        data = event_data(event.data)
        if event.kind == "received":
            if not clocks:
                start(DeadlineKind.FIRST_RESPONSE, at)
                start(DeadlineKind.RESOLUTION, at)
        elif event.kind == "reopened":
            if data.get("by_message") in answers_only:
                continue
            status = MentionStatus.OPEN
            resume_all(at)
            if running(DeadlineKind.RESOLUTION) is None:
                start(DeadlineKind.RESOLUTION, at)
        elif event.kind == "follow_up":
            if status in CLOSED or data.get("message") in answers_only:
                continue
            if running(DeadlineKind.FIRST_RESPONSE) is None and running(DeadlineKind.NEXT_RESPONSE) is None:
                start(DeadlineKind.NEXT_RESPONSE, at)
        elif event.kind == "status_changed":
            try:
                new = MentionStatus(str(data.get("to")))
            except ValueError:
                continue
            old, status = status, new
            if new is MentionStatus.WAITING:
                for c in clocks:
                    if c.kind in PAUSABLE:
                        c.pause(at)
            elif new in CLOSED:
                close(at, resolved=new is not MentionStatus.SPAM)
            else:
                resume_all(at)
                if old in CLOSED and running(DeadlineKind.RESOLUTION) is None:
                    start(DeadlineKind.RESOLUTION, at)
        elif event.kind == RESPONDED:
            if not data.get("human", True):
                continue
            for kind in (*RESPONSE_KINDS, DeadlineKind.FOLLOW_UP):
                clock = running(kind)
                if clock is not None and clock.started_at <= at:
                    clock.resume(at)
                    clock.met_at = at
            promised = data.get("holding_until")
            if isinstance(promised, int) and status not in CLOSED:
                # None: the promised time had passed by the send; the follow-up window counts from the send.
                start(DeadlineKind.FOLLOW_UP, at, promised if promised > at else None)
    policy = policies.policy_for(head.channel, head.priority)
    out: list[PlannedDeadline] = []
    for c in clocks:
        spans = [(int(p or 0), int(r)) for p, r in c.pauses if r is not None]
        closed: list[Pause] = list(spans)
        if c.kind is DeadlineKind.FOLLOW_UP and c.promised is not None:
            due, warn = follow_up_plan(c.started_at, c.promised, policy.rule.warn_fraction)
        elif c.kind is DeadlineKind.FOLLOW_UP:
            window = policy.plan(FOLLOW_UP_WINDOW, c.started_at, closed)
            if window is None:  # pragma: no cover - closed pauses never stop a clock for good
                continue
            due, warn = window
        else:
            planned = policy.plan(c.kind, c.started_at, closed)
            if planned is None:  # pragma: no cover - closed pauses never stop a clock for good
                continue
            due, warn = planned
        out.append(
            PlannedDeadline(
                kind=c.kind,
                started_at=c.started_at,
                due_at=due,
                warn_at=warn,
                met_at=c.met_at,
                paused_at=int(c.pauses[-1][0] or 0) if c.paused else None,
                cancelled_at=c.cancelled_at,
                resumed_at=spans[-1][1] if spans else None,
                paused_seconds=sum(r - p for p, r in spans),
            )
        )
    return out


def _reconcile(
    head_id: int, rows: Sequence[DeadlineRow], planned: Sequence[PlannedDeadline], now: int
) -> tuple[list[DeadlineValues], list[DeadlineValues], list[NewEvent]]:
    """Match stored rows to the plan (same kind and start, else the running one of the kind) and diff them."""
    inserts: list[DeadlineValues] = []
    updates: list[DeadlineValues] = []
    events: list[NewEvent] = []
    unmatched = list(rows)
    pairs: list[tuple[DeadlineRow | None, PlannedDeadline]] = []
    pending: list[PlannedDeadline] = []
    for plan in planned:
        row = next((r for r in unmatched if r.kind is plan.kind and r.started_at == plan.started_at), None)
        if row is None:
            pending.append(plan)
        else:
            unmatched.remove(row)
            pairs.append((row, plan))
    for plan in pending:
        row = next((r for r in unmatched if r.kind is plan.kind and r.met_at is None and r.cancelled_at is None), None)
        if row is not None:
            unmatched.remove(row)
        pairs.append((row, plan))
    for row, plan in pairs:
        # Met at or before the due second: a breach the sweeper recorded first is void (see the module rules).
        void_breach = (
            row is not None and row.breached_at is not None and plan.met_at is not None and plan.met_at <= row.due_at
        )
        keep_times = row is not None and (
            row.breached_at is not None or row.met_at is not None or row.cancelled_at is not None
        )
        due, warn = (row.due_at, row.warn_at) if keep_times and row is not None else (plan.due_at, plan.warn_at)
        values = DeadlineValues(
            mention_id=head_id,
            kind=plan.kind,
            started_at=plan.started_at,
            due_at=due,
            warn_at=warn,
            met_at=plan.met_at,
            paused_at=plan.paused_at,
            cancelled_at=plan.cancelled_at,
            id=None if row is None else row.id,
            clear_breach=void_breach,
        )
        if row is None:
            inserts.append(values)
        elif void_breach or (row.started_at, row.due_at, row.warn_at, row.met_at, row.paused_at, row.cancelled_at) != (
            values.started_at, values.due_at, values.warn_at, values.met_at, values.paused_at, values.cancelled_at,
        ):  # fmt: skip
            updates.append(values)
        ref: dict[str, object] = {"deadline": plan.kind.value}
        if row is not None:
            ref["deadline_id"] = row.id
        if void_breach and plan.met_at is not None:
            events.append(
                NewEvent(plan.met_at, ACTOR, head_id, "breach_withdrawn", {**ref, "cause": "met within the due second"})
            )
        if plan.met_at is not None and (row is None or row.met_at is None):
            events.append(NewEvent(plan.met_at, ACTOR, head_id, "deadline_met", ref))
        if plan.paused_at is not None and (row is None or row.paused_at is None):
            events.append(NewEvent(plan.paused_at, ACTOR, head_id, "deadline_paused", ref))
        if row is not None and row.paused_at is not None and plan.paused_at is None and plan.resumed_at is not None:
            events.append(NewEvent(plan.resumed_at, ACTOR, head_id, "deadline_resumed", ref))
    for row in unmatched:
        # A deadline the rules no longer give (e.g. a clock store_batch started on a spam item): stop it.
        if row.met_at is None and row.cancelled_at is None:
            updates.append(
                DeadlineValues(head_id, row.kind, row.started_at, row.due_at, row.warn_at, None, None, now, id=row.id)
            )
    return inserts, updates, events


class SlaEngine:
    """Keeps every item's deadlines right as replies, status changes, follow-ups and policy changes happen."""

    def __init__(self, repo: DeadlineRepo, settings: SettingsRepo, clock: Clock) -> None:
        self._repo = repo
        self._settings = settings
        self._clock = clock
        self._policies = self._load()

    # ------------------------------------------------------------------ policies
    def _load(self) -> PolicySet:
        text = self._settings.get(SLA_POLICIES)
        if text:
            try:
                return PolicySet.from_json(text)
            except PolicyError as exc:
                log.error("the saved SLA policy is unusable (%s); using the shipped defaults", exc)
        return shipped_policy()

    @property
    def policies(self) -> PolicySet:
        return self._policies

    def planner(self, channel: str) -> DeadlinePlan:
        """Deadline planner for new items of ``channel`` (what ``store_batch`` takes)."""
        return self._policies.planner(channel)

    def default_calendar(self) -> Calendar:
        """When the team works by the default rule (the last one): what the expected wait is laid on."""
        return self._policies.calendars[self._policies.rules[-1].calendar]

    def set_policies(self, policies: PolicySet) -> list[int]:
        """Save a new policy set and recompute every running deadline under it; past breaches stay.

        Returns:
            The items whose deadlines changed.
        """
        self._settings.set(SLA_POLICIES, policies.to_json())
        self._policies = policies
        return self.recompute(self._repo.open_heads())

    # ------------------------------------------------------------------ inputs
    def record_response(
        self, mention_id: int, at: int, *, human: bool = True, holding_until: int | None = None
    ) -> None:
        """A reply reached the customer at ``at``.

        A human-written, customer-visible reply meets the pending first or next response and a pending follow-up
        commitment; with ``holding_until`` it is a holding reply and opens a follow-up commitment due then.
        Automatic messages (``human=False``) are logged and meet nothing.
        """
        head = self._repo.head_of(mention_id)
        if head is None:
            raise ValueError(f"no item {mention_id}")
        events = [NewEvent(at, ACTOR, head, RESPONDED, {"human": human, "holding_until": holding_until})]
        if human and holding_until is not None:
            # A promised time already past at the send is counted from the send (see replay): say so in the log.
            promise: dict[str, object] = {"due_at": holding_until}
            if holding_until <= at:
                promise = {"due_at": None, "promised_at": holding_until, "counted_from_send": True}
            events.append(NewEvent(at, ACTOR, head, "follow_up_promised", promise))
        self._repo.append_events(events)
        self.recompute([head])

    def reply_sent(self, mention_id: int, at: int, *, purpose: str, holding_until: int | None = None) -> None:
        """Outbox hook: a sent reply of ``purpose`` ("reply", "holding", "survey", "correction", "status")."""
        self.record_response(
            mention_id,
            at,
            human=purpose in HUMAN_PURPOSES,
            holding_until=holding_until if purpose == "holding" else None,
        )

    def on_status_change(self, mention_id: int, old: MentionStatus, new: MentionStatus, at: int) -> None:
        """The item's status changed (triage): waiting pauses, closing stops, reopening resumes.

        Logs the "status_changed" event unless the caller already did.
        """
        head = self._repo.head_of(mention_id)
        if head is None:
            raise ValueError(f"no item {mention_id}")
        data: dict[str, object] = {"from": old.value, "to": new.value}
        if old is not new and not self._repo.has_status_change(head, at, old.value, new.value):
            self._repo.append_events([NewEvent(at, ACTOR, head, "status_changed", data)])
        self.recompute([head])

    def on_priority_change(self, mention_id: int, old: int, new: int, at: int) -> None:
        """The item's priority changed (triage): its running deadlines follow the policy of the new priority.

        Met, cancelled and breached deadlines keep their times; the triage repository logged the event.
        """
        del old, new, at  # the replay reads the item's current priority
        head = self._repo.head_of(mention_id)
        if head is None:
            raise ValueError(f"no item {mention_id}")
        self.recompute([head])

    def on_synced(self, report: SyncReport) -> None:
        """Poller listener: items that got customer follow-ups are replayed (reopen, next response, resume)."""
        if report.follow_ups:
            self.recompute(report.follow_ups)

    # ------------------------------------------------------------------ recompute
    def planned(self, head_id: int) -> list[PlannedDeadline]:
        """What the rules give for one item now, without writing anything."""
        heads = self._repo.heads([head_id])
        if head_id not in heads:
            return []
        return replay(self._repo.events([head_id]).get(head_id, []), heads[head_id], self._policies)

    def recompute(self, head_ids: Iterable[int]) -> list[int]:
        """Replay the items' logs and bring their stored deadlines in line (in chunks of 500).

        Returns:
            The items whose deadlines changed.
        """
        ids = list(dict.fromkeys(head_ids))
        now = int(self._clock.now())
        changed: list[int] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            heads = self._repo.heads(chunk)
            events = self._repo.events(chunk)
            rows = self._repo.deadlines(chunk)
            inserts: list[DeadlineValues] = []
            updates: list[DeadlineValues] = []
            new_events: list[NewEvent] = []
            touched: list[int] = []
            for head_id in chunk:
                head = heads.get(head_id)
                if head is None:
                    continue
                planned = replay(events.get(head_id, []), head, self._policies)
                ins, upd, evs = _reconcile(head_id, rows.get(head_id, []), planned, now)
                if ins or upd or evs:
                    touched.append(head_id)
                inserts += ins
                updates += upd
                new_events += evs
            self._repo.apply(inserts=inserts, updates=updates, events=new_events, refresh=touched)
            changed += touched
        return changed

    # ------------------------------------------------------------------ breaches and bands
    def record_breaches(self, now: int | None = None) -> list[int]:
        """Record every deadline whose due time has passed unmet, once, with its cause.

        Returns:
            The items that gained a breach.
        """
        at = int(self._clock.now()) if now is None else now
        due = self._repo.due_unbreached(at)
        if not due:
            return []
        heads = self._repo.heads({d.mention_id for d in due})
        breaches = []
        for d in due:
            head = heads.get(d.mention_id)
            breaches.append(Breach(d.id, d.mention_id, d.kind, d.due_at, self._breach_data(d, head)))
        self._repo.record_breaches(breaches)
        return sorted({d.mention_id for d in due})

    def _breach_data(self, d: DeadlineRow, head: HeadInfo | None) -> dict[str, object]:
        data: dict[str, object] = {"deadline": d.kind.value, "deadline_id": d.id, "due_at": d.due_at}
        if d.kind is DeadlineKind.FOLLOW_UP:
            data["cause"] = "promised follow-up not sent by the time promised"
            return data
        target = None
        if head is not None:
            target = self._policies.policy_for(head.channel, head.priority).target(d.kind)
        if target is not None:
            data["target_seconds"] = target
            data["cause"] = f"no {'human reply' if d.kind in RESPONSE_KINDS else 'resolution'} within the " + (
                f"{_duration(target)} {_KIND_TEXT[d.kind]} target"
            )
        return data

    def band_changes(self, since: int, until: int) -> list[int]:
        """Open items whose queue band changed in ``(since, until]``; cost follows the changes, not the queue."""
        return self._repo.band_changes(since, until)

    def next_band_change(self, after: int) -> int | None:
        """When the next band change of any open item happens (schedule one single-shot timer for it)."""
        return self._repo.next_band_change(after)

    # ------------------------------------------------------------------ explanations
    def notes(self, head_id: int, rows: Sequence[DeadlineRow], now: float) -> dict[int, str]:
        """Plain-language notes for running deadlines whose clock is not running now (by deadline id).

        ``"paused · 42:00 left"`` while waiting on the customer; ``"outside business hours · resumes Mon 09:00"``.
        """
        heads = self._repo.heads([head_id])
        head = heads.get(head_id)
        if head is None:
            return {}
        policy = self._policies.policy_for(head.channel, head.priority)
        cal = policy.calendar
        at = int(now)
        out: dict[int, str] = {}
        for row in rows:
            if row.met_at is not None or row.cancelled_at is not None or row.kind is DeadlineKind.FOLLOW_UP:
                continue
            if row.paused_at is not None:
                left = elapsed_running(cal, row.paused_at, row.due_at)
                out[row.id] = f"{_clock_text(left)} left when paused"
            elif not cal.always_open and at < row.due_at and not is_open(cal, at):
                resumes = next_open(cal, at)
                when = datetime.fromtimestamp(resumes, cal.zone)
                out[row.id] = f"outside business hours · resumes {when:%a %H:%M}"
        return out


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


def _clock_text(seconds: int) -> str:
    hours, rest = divmod(max(0, seconds), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"
