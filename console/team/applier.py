"""Team events -> the local copy: a colleague's change applied through the storage repositories, idempotently.

Every team event this copy holds is in ``team_applied``; an event whose uid is there is skipped (its server seq
is filled in when it is one of our own coming back), so applying the same page twice changes nothing. Events
are applied in server order, in chunks of :data:`CHUNK`, each chunk one transaction together with the pull
cursor, on a worker thread with its own SQLite connection (:class:`Applier` with a file) so a 10,000-event
catch-up never blocks the loop; on an in-memory database, inline on the caller's connection.

What each kind does (docs/TEAM.md "Event kinds"):

- ``mention``: the message is stored through the one store path (``MentionRepo.store_batch`` with the SLA
  planner), creating the account when this copy has none (without a token: this member may not poll it).
- ``status_changed``/``priority_changed``/``tags_changed``: through ``TriageRepo`` (not the undo stack). The
  server's order decides: a colleague's change older than our own change of the same field (ours not yet
  pushed, or pushed with a later seq) does not apply here either, and the pair is recorded in
  ``team_conflicts``; a colleague's change that overrides an own change it had not seen applies, and is recorded
  too. Nothing is silently dropped.
- ``reply_sent``: the colleague's reply is stored as sent (its idempotency key is the reply key; skipped when
  this copy has it) and reported, so the SLA engine meets the deadline; ``reply_seen`` (the brand's reply
  found on the channel) is reported the same way.
- ``follow_up_promised``/``follow_up_kept``: held only: this copy's SLA engine derives its own from the reply.
- anything else (claims, hand-overs, shifts, notes, surveys, send anyway): a local event for the history.

Events about an item not stored here yet are parked and applied when its mention arrives. Every local event
written while applying carries the team event's uid (``events.remote_uid``), so the pusher never sends it back.
The :class:`ApplyReport` says what changed, for the window, and what the SLA engine still has to hear
(:func:`follow_through`, on the loop).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.sla.engine import SlaEngine
from console.team.keys import item_key, local_event_uid, parse_account_key
from storage.accounts import AccountRepo
from storage.db import close_database, open_database
from storage.mentions import DeadlinePlan, MentionRepo
from storage.rows import MentionKind, MentionStatus, NewMention
from storage.seen_replies import SeenReplyRepo
from storage.team_local import SharedEvent, TeamLocalRepo
from storage.triage import TriageRepo

log = logging.getLogger(__name__)

#: Team events applied in one transaction (and one trip to the worker thread).
CHUNK = 500

#: Kinds that set one field of an item: the server's order decides between concurrent changes.
FIELD_KINDS = ("status_changed", "priority_changed", "tags_changed")
#: Kinds held without a local event: every copy's SLA engine derives its own from the reply.
DERIVED_KINDS = frozenset({"follow_up_promised", "follow_up_kept"})
#: Reply purposes that answer the customer: two of them to one message is worth telling the agent.
ANSWER_PURPOSES = frozenset({"reply", "holding"})


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A colleague's status change applied here (the SLA engine pauses, stops or resumes clocks)."""

    mention_id: int
    old: MentionStatus
    new: MentionStatus
    at: int
    uid: str


@dataclass(frozen=True, slots=True)
class PriorityChange:
    """A colleague's priority change applied here (running deadlines follow the new priority's policy)."""

    mention_id: int
    old: int
    new: int
    at: int
    uid: str


@dataclass(frozen=True, slots=True)
class Response:
    """A reply that reached the customer, sent by a colleague or seen on the channel: it meets the deadline."""

    mention_id: int
    at: int
    purpose: str
    holding_until: int | None
    uid: str


@dataclass(frozen=True, slots=True)
class ApplyReport:
    """What one call of :meth:`Applier.apply` changed in the local copy."""

    #: New queue items (thread heads) stored from the team.
    new_mentions: tuple[int, ...] = ()
    #: Items that changed (follow-ups, status, priority, tags, replies, history): the window refreshes them.
    changed: tuple[int, ...] = ()
    #: Items that got customer follow-ups (the SLA engine replays them).
    follow_ups: tuple[int, ...] = ()
    status_changes: tuple[StatusChange, ...] = ()
    priority_changes: tuple[PriorityChange, ...] = ()
    responses: tuple[Response, ...] = ()
    applied: int = 0
    #: Events this copy already held (our own coming back, or a page read twice).
    skipped: int = 0
    parked: int = 0
    conflicts: int = 0
    #: The highest seq of the page (the pull cursor now), or 0 for an empty page.
    last_seq: int = 0

    @property
    def empty(self) -> bool:
        """Nothing changed locally (every event held already, or the page was empty)."""
        return not (self.new_mentions or self.changed or self.parked or self.conflicts)

    def merged(self, other: ApplyReport) -> ApplyReport:
        """This report followed by ``other`` (the chunks of one page)."""
        return ApplyReport(
            new_mentions=self.new_mentions + other.new_mentions,
            changed=tuple(dict.fromkeys(self.changed + other.changed)),
            follow_ups=tuple(dict.fromkeys(self.follow_ups + other.follow_ups)),
            status_changes=self.status_changes + other.status_changes,
            priority_changes=self.priority_changes + other.priority_changes,
            responses=self.responses + other.responses,
            applied=self.applied + other.applied,
            skipped=self.skipped + other.skipped,
            parked=self.parked + other.parked,
            conflicts=self.conflicts + other.conflicts,
            last_seq=max(self.last_seq, other.last_seq),
        )


@dataclass(slots=True)
class _Chunk:
    """What one chunk is collecting while it applies."""

    new_mentions: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    follow_ups: list[int] = field(default_factory=list)
    status: list[StatusChange] = field(default_factory=list)
    priority: list[PriorityChange] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    held: list[tuple[str, int | None, str, str | None]] = field(default_factory=list)
    applied: int = 0
    skipped: int = 0
    parked: int = 0
    conflicts: int = 0

    def report(self, last_seq: int) -> ApplyReport:
        return ApplyReport(
            tuple(self.new_mentions), tuple(dict.fromkeys(self.changed)), tuple(dict.fromkeys(self.follow_ups)),
            tuple(self.status), tuple(self.priority), tuple(self.responses), self.applied, self.skipped,
            self.parked, self.conflicts, last_seq,
        )  # fmt: skip


def _int(value: object, default: int = 0) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return default


def _opt_int(value: object) -> int | None:
    return None if value is None else _int(value)


def _tags(value: object) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(t) for t in value)
    if isinstance(value, str):
        return tuple(t for t in (p.strip() for p in value.split(",")) if t)
    return ()


def _thread_key(event: SharedEvent) -> str | None:
    """The item (thread head) a ``mention`` event is about: its own key, or its head's for a follow-up."""
    head = event.data.get("head_external_id")
    account = event.data.get("account_key")
    if head and account:
        return item_key(str(account), str(head))
    return event.item_key


def _hoist_mentions(events: Sequence[SharedEvent]) -> tuple[list[SharedEvent], list[SharedEvent]]:
    """(the messages that can be stored first, in one batch; everything else, in server order).

    Storing a message commutes with every change to other items; only a change to its own thread earlier in the
    chunk must stay before it (a follow-up reopens a closed item). Messages of a catch-up then go into the store
    path as one batch instead of one transaction each between the changes that follow them.
    """
    touched: set[str] = set()
    first: list[SharedEvent] = []
    rest: list[SharedEvent] = []
    for event in events:
        if event.kind == "mention":
            thread = _thread_key(event)
            if thread not in touched and event.item_key not in touched:
                first.append(event)
                continue
        elif event.item_key:
            touched.add(event.item_key)
        rest.append(event)
    return first, rest


class ApplyCore:
    """The synchronous applier on one connection (the worker's, or the caller's for an in-memory database)."""

    def __init__(
        self, mentions: MentionRepo, *, member_uuid: str, plan_for: Callable[[str], DeadlinePlan], now: int
    ) -> None:
        """Args:
        mentions: the mentions repository of the connection to write on (used from one thread only); the
            other repositories share its database.
        member_uuid: this member's uuid, to recognise own events by their uid.
        plan_for: the SLA planner of a channel kind (``SlaEngine.planner``), for stored mentions.
        now: epoch seconds, for accounts created from the team.
        """
        db = mentions.db
        self._local = TeamLocalRepo(db)
        self._mentions = mentions
        self._accounts = AccountRepo(db)
        self._triage = TriageRepo(db)
        self._seen = SeenReplyRepo(db)
        self._member_uuid = member_uuid
        self._plan_for = plan_for
        self._now = now

    def apply_chunk(self, events: Sequence[SharedEvent]) -> ApplyReport:
        """Apply ``events`` (server order) and move the pull cursor, in one transaction."""
        out = _Chunk()
        last_seq = max((e.seq for e in events), default=0)
        with self._local.transaction():
            held = self._local.applied_seqs(e.uid for e in events)
            own_back: list[tuple[str, int | None, str, str | None]] = []
            fresh: list[SharedEvent] = []
            for event in events:
                if event.uid in held:
                    out.skipped += 1
                    if held[event.uid] is None:  # our own, read back: now its seq is known
                        own_back.append((event.uid, event.seq, event.kind, event.item_key))
                    continue
                held[event.uid] = event.seq
                fresh.append(event)
            self._local.mark_applied(own_back)  # before any comparison of seqs below
            first, rest = _hoist_mentions(fresh)
            if first:
                self._store_mentions(first, out)
            pending_mentions: list[SharedEvent] = []
            for event in rest:
                if event.kind == "mention":
                    pending_mentions.append(event)
                    continue
                if pending_mentions:
                    self._store_mentions(pending_mentions, out)
                    pending_mentions = []
                self._apply_one(event, out)
            if pending_mentions:
                self._store_mentions(pending_mentions, out)
            self._local.mark_applied(out.held)
            if last_seq:
                self._local.set_pulled(last_seq)
        return out.report(last_seq)

    # ------------------------------------------------------------------ mentions
    def _store_mentions(self, events: Sequence[SharedEvent], out: _Chunk) -> None:
        accounts = self._local.account_ids()
        by_account: dict[str, list[NewMention]] = {}
        heads: dict[tuple[str, str], str] = {}  # (account, external id) -> the thread head named by the sender
        keys: list[str] = []
        for event in events:
            data = event.data
            account = str(data.get("account_key", ""))
            out.held.append((event.uid, event.seq, event.kind, event.item_key))
            try:
                parts = parse_account_key(account)
            except ValueError:
                log.warning("team mention %s names no account; held without storing", event.uid)
                continue
            if account not in accounts:
                row = self._accounts.add(kind=parts.kind, handle=parts.handle, base_url=parts.base_url, now=self._now)
                accounts[account] = row.id
            kind = str(data.get("kind", MentionKind.PUBLIC.value))
            parent = data.get("parent_external_id")
            external_id = str(data.get("external_id", ""))
            by_account.setdefault(account, []).append(
                NewMention(
                    account_id=accounts[account], external_id=external_id,
                    author_external_id=str(data.get("author_id") or data.get("author_handle") or ""),
                    author_handle=str(data.get("author_handle", "")), author_name=str(data.get("author_name", "")),
                    text=str(data.get("text", "")), url=str(data.get("url", "")),
                    posted_at=_int(data.get("posted_at"), event.at),
                    kind=MentionKind(kind) if kind in MentionKind._value2member_map_ else MentionKind.PUBLIC,
                    visibility=str(data.get("visibility", "public")),
                    parent_external_id=str(parent) if parent else None, raw_json="{}",
                )
            )  # fmt: skip
            keys.append(event.item_key or item_key(account, external_id))
            head = data.get("head_external_id")
            if head and parent and head != parent:
                heads[(account, external_id)] = str(head)
            out.applied += 1
        before_max = self._local.max_mention_id()
        for account, items in by_account.items():
            channel = parse_account_key(account).kind
            items.sort(key=lambda m: m.posted_at)  # the store path takes a batch oldest first
            items[:] = self._thread_by_head(account, items, heads)
            result = self._mentions.store_batch(
                items, channel=channel, fetched_at=self._now, plan=self._plan_for(channel), actor="team"
            )
            out.new_mentions.extend(result.new_heads)
            out.follow_ups.extend(result.follow_up_heads)
            out.changed.extend(result.follow_up_heads)
        self._local.skip_applied_mentions(before_max)
        self._local.relink_claims()  # a claim mirrored before its item arrived now names it
        parked = self._local.parked_for(keys)
        for event in parked:
            self._apply_one(event, out, held_already=True)

    def _thread_by_head(
        self, account: str, items: list[NewMention], heads: dict[tuple[str, str], str]
    ) -> list[NewMention]:
        """A follow-up whose parent this copy never got (a message only the sender's copy fetched) joins the
        thread through the head the sender named, as on the sender's copy, instead of becoming a new item."""
        wanted = {
            item.parent_external_id: item
            for item in items
            if item.parent_external_id and (account, item.external_id) in heads
        }
        if not wanted:
            return items
        in_batch = {item.external_id for item in items}
        known = self._local.known_external_ids(items[0].account_id, [p for p in wanted if p not in in_batch])
        return [
            dataclasses.replace(item, parent_external_id=heads[(account, item.external_id)])
            if item.parent_external_id
            and (account, item.external_id) in heads
            and item.parent_external_id not in in_batch
            and item.parent_external_id not in known
            else item
            for item in items
        ]

    # ------------------------------------------------------------------ everything else
    def _apply_one(self, event: SharedEvent, out: _Chunk, *, held_already: bool = False) -> None:
        if not held_already:
            out.held.append((event.uid, event.seq, event.kind, event.item_key))
        if event.kind in DERIVED_KINDS:
            out.applied += 1
            return
        mention_id: int | None = None
        if event.item_key:
            found = self._local.mention_ids([event.item_key]).get(event.item_key)
            if found is None:
                self._local.park([event])
                out.parked += 1
                return
            mention_id = self._local.head_of(found) or found
        out.applied += 1
        handler = {
            "status_changed": self._status,
            "priority_changed": self._priority,
            "tags_changed": self._tags,
            "reply_sent": self._reply_sent,
            "reply_seen": self._reply_seen,
        }.get(event.kind)
        if handler is not None and mention_id is not None:
            handler(event, mention_id, out)
            return
        if mention_id is None and event.kind == "handed_over":
            self._handed_over(event, out)
            return
        self._local.record_event(
            at=event.at, actor=event.author, kind=event.kind, mention_id=mention_id, data=event.data,
            remote_uid=event.uid,
        )  # fmt: skip
        if mention_id is not None:
            out.changed.append(mention_id)

    def _overridden_by_ours(self, event: SharedEvent, mention_id: int) -> tuple[bool, dict[str, Any] | None]:
        """(does an own change of the same field stand after ``event`` in the server's order, its data).

        Our change stands after theirs when it is not pushed yet (it will be appended after ``event``) or was
        pushed and not read back yet (a change read back before ``event`` has its seq by now), or came back with
        a later seq.
        """
        own = self._local.latest_own_event(mention_id, event.kind)
        if own is None:
            return False, None
        uid = local_event_uid(self._member_uuid, own.id)
        seqs = self._local.applied_seqs([uid])
        if uid not in seqs:
            return True, own.data
        seq = seqs[uid]
        return (seq is None or seq > event.seq), own.data

    def _field_change(self, event: SharedEvent, mention_id: int, out: _Chunk, current: object) -> bool:
        """Decide a field change against our own: True to apply it. Records the conflict either way."""
        ours_later, own = self._overridden_by_ours(event, mention_id)
        theirs = {"author": event.author, "seq": event.seq, **dict(event.data)}
        if ours_later and own is not None:
            self._local.add_conflict(
                at=event.at, mention_id=mention_id, item_key=event.item_key, kind=event.kind, ours=own,
                theirs=theirs, winner="ours",
                reason=f"{event.author}'s change was made before yours reached the team; yours stands",
            )  # fmt: skip
            out.conflicts += 1
            self._local.record_event(
                at=event.at, actor=event.author, kind=f"{event.kind}_overridden", mention_id=mention_id,
                data=dict(event.data), remote_uid=event.uid,
            )  # fmt: skip
            out.changed.append(mention_id)
            return False
        latest = self._local.latest_event(mention_id, event.kind)
        if own is not None and latest is not None and latest.remote_uid is None:
            seen = event.data.get("from")
            if event.kind == "tags_changed":
                unseen = set(_tags(seen)) != set(_tags(current))
            else:
                unseen = seen is not None and str(seen) != str(current)
            if unseen:
                self._local.add_conflict(
                    at=event.at, mention_id=mention_id, item_key=event.item_key, kind=event.kind, ours=own,
                    theirs=theirs, winner="theirs",
                    reason=f"{event.author} changed it without having seen your change; theirs stands",
                )  # fmt: skip
                out.conflicts += 1
        return True

    def _written(self, event: SharedEvent, before: int) -> None:
        """Events the repository wrote for ``event`` carry its uid (they are never pushed back)."""
        self._local.mark_derived(before, event.uid)

    def _status(self, event: SharedEvent, mention_id: int, out: _Chunk) -> None:
        state = self._triage.state(mention_id)
        to = str(event.data.get("to", ""))
        if state is None or to not in MentionStatus._value2member_map_:
            self._record(event, mention_id, out)
            return
        if not self._field_change(event, mention_id, out, state.status.value):
            return
        before = self._local.max_event_id()
        new = MentionStatus(to)
        self._triage.set_status(mention_id, new, at=event.at, actor=event.author)
        self._written(event, before)
        out.status.append(StatusChange(mention_id, state.status, new, event.at, event.uid))
        out.changed.append(mention_id)

    def _priority(self, event: SharedEvent, mention_id: int, out: _Chunk) -> None:
        state = self._triage.state(mention_id)
        to = _opt_int(event.data.get("to"))
        if state is None or to is None:
            self._record(event, mention_id, out)
            return
        if not self._field_change(event, mention_id, out, state.priority):
            return
        before = self._local.max_event_id()
        self._triage.set_priority(mention_id, to, at=event.at, actor=event.author)
        self._written(event, before)
        out.priority.append(PriorityChange(mention_id, state.priority, to, event.at, event.uid))
        out.changed.append(mention_id)

    def _tags(self, event: SharedEvent, mention_id: int, out: _Chunk) -> None:
        state = self._triage.state(mention_id)
        if state is None:
            self._record(event, mention_id, out)
            return
        if not self._field_change(event, mention_id, out, list(state.tags)):
            return
        before = self._local.max_event_id()
        tags = _tags(event.data.get("to", event.data.get("tags", [])))
        self._triage.set_tags(mention_id, tags, at=event.at, actor=event.author)
        self._written(event, before)
        out.changed.append(mention_id)

    def _reply_sent(self, event: SharedEvent, mention_id: int, out: _Chunk) -> None:
        data = event.data
        key = str(data.get("reply_key") or event.uid)
        purpose = str(data.get("purpose", "reply"))
        sent_at = _int(data.get("posted_at"), event.at)
        holding = _opt_int(data.get("holding_until"))
        external = data.get("external_id")
        stored = self._local.record_colleague_reply(
            mention_id=mention_id, reply_key=key, text=str(data.get("text", "")), purpose=purpose,
            external_id=None if external is None else str(external), url=str(data.get("url", "")),
            sent_at=sent_at, holding_until=holding, actor=event.author, remote_uid=event.uid,
        )  # fmt: skip
        if stored:
            out.responses.append(Response(mention_id, sent_at, purpose, holding, event.uid))
            if purpose in ANSWER_PURPOSES:
                self._double_answer(event, mention_id, key, sent_at, out)
        out.changed.append(mention_id)

    def _double_answer(self, event: SharedEvent, mention_id: int, key: str, sent_at: int, out: _Chunk) -> None:
        """Two members answered the same customer message (one of them offline, or over a claim): both replies
        reached the customer, so nothing is undone, but the agent is told."""
        for own in self._local.own_replies_answering(mention_id, sent_at, other_key=key):
            self._local.add_conflict(
                at=sent_at, mention_id=mention_id, item_key=event.item_key, kind="reply_sent", ours=own,
                theirs={"author": event.author, "seq": event.seq, **dict(event.data)}, winner="server",
                reason=f"{event.author} also answered this message: the customer got both replies",
            )  # fmt: skip
            out.conflicts += 1

    def _reply_seen(self, event: SharedEvent, mention_id: int, out: _Chunk) -> None:
        """The brand's reply a colleague's copy found on the channel: stored here as it would be found here (a
        sent reply of the item, once per post), and the SLA engine hears of it."""
        data = event.data
        at = _int(data.get("posted_at"), event.at)
        row = self._mentions.rows_by_id([mention_id]).get(mention_id)
        external_id = str(data.get("external_id") or "")
        if row is None or not external_id:
            self._record(event, mention_id, out)
            return
        before = self._local.max_event_id()
        client = data.get("client")
        stored = self._seen.record(
            account_id=row.account_id, mention_id=mention_id, external_id=external_id, url=str(data.get("url", "")),
            text=str(data.get("text", "")), posted_at=at, visibility=str(data.get("visibility", "public")),
            now=self._now, actor=str(data.get("by") or event.author), client=str(client) if client else "",
        )  # fmt: skip
        if stored is None:  # this copy found the post itself, or had it already: history only
            self._record(event, mention_id, out)
            return
        self._written(event, before)
        out.responses.append(Response(mention_id, at, "reply", None, event.uid))
        out.changed.append(mention_id)

    def _handed_over(self, event: SharedEvent, out: _Chunk) -> None:
        """A hand-over names several items and no single one: each item's history shows it ("Handed over to Sam ·
        note"), and the event is kept once more without an item for the shift's own record."""
        keys = [str(k) for k in event.data.get("items") or [] if isinstance(k, str)]
        found = self._local.mention_ids(keys)
        for key in keys:
            local = found.get(key)
            if local is None:  # an item this copy has not received: the hand-over record below still names it
                continue
            head = self._local.head_of(local) or local
            self._record(event, head, out)
        self._local.record_event(
            at=event.at, actor=event.author, kind=event.kind, mention_id=None, data=event.data, remote_uid=event.uid
        )

    def _record(self, event: SharedEvent, mention_id: int, out: _Chunk) -> None:
        self._local.record_event(
            at=event.at, actor=event.author, kind=event.kind, mention_id=mention_id, data=event.data,
            remote_uid=event.uid,
        )  # fmt: skip
        out.changed.append(mention_id)


class Applier:
    """Applies pages of team events in chunks: on its own thread and connection for a file, inline in memory.

    One instance per running team copy; :meth:`aclose` lets go of the worker's connection.
    """

    def __init__(
        self,
        mentions: MentionRepo,
        db_path: Path | None,
        *,
        member_uuid: str,
        plan_for: Callable[[str], DeadlinePlan],
        now: Callable[[], float],
    ) -> None:
        """Args:
        mentions: the app's mentions repository (its connection is used inline when ``db_path`` is None: an
            in-memory database).
        db_path: the database file; the worker opens its own connection on it.
        member_uuid: this member's uuid.
        plan_for: the SLA planner by channel kind.
        now: the injected clock's ``now``.
        """
        self._mentions = mentions
        self._path = db_path
        self._member_uuid = member_uuid
        self._plan_for = plan_for
        self._now = now
        self._executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="care-team-apply") if db_path is not None else None
        )
        self._worker: MentionRepo | None = None

    def _core(self, mentions: MentionRepo) -> ApplyCore:
        return ApplyCore(mentions, member_uuid=self._member_uuid, plan_for=self._plan_for, now=int(self._now()))

    def _on_worker(self, events: list[SharedEvent]) -> ApplyReport:
        if self._worker is None:
            assert self._path is not None
            self._worker = MentionRepo(open_database(self._path, migrate=False))
        return self._core(self._worker).apply_chunk(events)

    async def apply(self, events: Sequence[SharedEvent]) -> ApplyReport:
        """Apply a page of team events (server order) to the local copy, :data:`CHUNK` at a time.

        Raises:
            StorageError: a chunk could not be written; the chunks before it stay applied (with the cursor).
        """
        report = ApplyReport()
        ordered = sorted(events, key=lambda e: e.seq)
        for start in range(0, len(ordered), CHUNK):
            chunk = ordered[start : start + CHUNK]
            if self._executor is not None:
                call = functools.partial(self._on_worker, chunk)
                part = await asyncio.get_running_loop().run_in_executor(self._executor, call)
            else:
                part = self._core(self._mentions).apply_chunk(chunk)
                await asyncio.sleep(0)  # let the loop breathe between inline chunks
            report = report.merged(part)
        return report

    def _close(self) -> None:
        if self._worker is not None:
            close_database(self._worker.db)
            self._worker = None

    async def aclose(self) -> None:
        """Close the worker's connection and stop its thread."""
        self.close()

    def close(self) -> None:
        """Like :meth:`aclose`, from synchronous code."""
        if self._executor is not None:
            self._executor.submit(self._close).result()
            self._executor.shutdown(wait=True)
            self._executor = None


#: follow_through hands the loop back after this many items (each is a replay of one item's log on the loop) ...
FOLLOW_SLICE = 5
#: ... or sooner, once this many seconds went by since it last did (one SQLite write can take milliseconds on a
#: busy machine).
FOLLOW_BUDGET_S = 0.010


async def follow_through(report: ApplyReport, sla: SlaEngine, local: TeamLocalRepo) -> None:
    """Tell the SLA engine what the applied events mean for deadlines (on the app's connection, on the loop).

    Replies met deadlines (a holding reply opens a follow-up commitment); status and priority changes and
    follow-ups are replayed. Done :data:`FOLLOW_SLICE` items at a time with the loop handed back in between, so
    a 10,000-event catch-up does not stall the window. What the engine writes for a colleague's reply (a derived
    ``follow_up_promised``) carries the reply event's uid, so it is never pushed as an own change; replays
    write only deadline events, which stay local anyway.
    """
    breather = _Breather()
    for response in report.responses:
        before = local.max_event_id()
        try:
            sla.reply_sent(
                response.mention_id, response.at, purpose=response.purpose, holding_until=response.holding_until
            )
        except ValueError:
            log.warning("team reply for an item the SLA engine does not know: %s", response.mention_id)
        local.mark_derived(before, response.uid)
        await breather.tick()
    answered = {r.mention_id for r in report.responses}
    heads = [
        head
        for head in dict.fromkeys(
            [c.mention_id for c in report.status_changes]
            + [p.mention_id for p in report.priority_changes]
            + list(report.follow_ups)
        )
        if head not in answered  # reply_sent replayed these already
    ]
    for start in range(0, len(heads), FOLLOW_SLICE):
        sla.recompute(heads[start : start + FOLLOW_SLICE])
        await breather.tick(FOLLOW_SLICE)


class _Breather:
    """Hands the loop back every :data:`FOLLOW_SLICE` items, or as soon as :data:`FOLLOW_BUDGET_S` went by."""

    def __init__(self) -> None:
        self._items = 0
        self._since = time.perf_counter()

    async def tick(self, items: int = 1) -> None:
        self._items += items
        if self._items >= FOLLOW_SLICE or time.perf_counter() - self._since >= FOLLOW_BUDGET_S:
            await asyncio.sleep(0)
            self._items = 0
            self._since = time.perf_counter()
