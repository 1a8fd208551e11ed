"""The hand-over at the end of a team shift (issue 23 item 1), across machines.

At the end of a shift the agent sees what they hold (``pending_for``): the items they claim or that were handed or
reassigned to them and are still open, their unkept follow-up commitments, and the notes on those items. One call
(``hand_over``) gives it all to a named colleague or back to the pool: one ``handed_over`` event with the items,
the follow-ups and the note (the items trigger assigns each item to the receiver), the agent's claims on them
released, and the shift ended, in one transaction on the server. The receiver's ``received_handovers`` lists
them marked "handed over by Alex · note"; ``start_shift`` returns what was handed over since the member's last
shift and what breached meanwhile.

Solo (``runtime.team is None``) the file-based hand-over of console/shifts stays as it is; this service is built
only in team mode.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from console.ports import Clock
from console.wording import handed_over_by
from storage.team.connect import TeamDb
from storage.team.supervisor import BreachedItem, Handover, HandoverRepo, PendingFollowUp, PendingItem

__all__ = [
    "HandoverResult",
    "HandoverService",
    "Pending",
    "ReceivedItem",
    "ShiftStart",
]

#: With no earlier shift on record, "meanwhile" is the last day.
DEFAULT_LOOKBACK_SECONDS = 24 * 3600

MentionIds = Callable[[Sequence[str]], Mapping[str, int]]
"""item keys -> local mention ids (``TeamLocalRepo.mention_ids``), for the window to open the items."""


def _no_ids(_keys: Sequence[str]) -> Mapping[str, int]:
    return {}


@dataclass(frozen=True, slots=True)
class Pending:
    """What a member holds at the end of a shift, to hand over."""

    member: str
    items: list[PendingItem]
    follow_ups: list[PendingFollowUp]
    #: Local mention ids of the items (those this copy holds), for the dialog to open them.
    mention_ids: dict[str, int]

    @property
    def keys(self) -> list[str]:
        """Every item to hand over: the held items and those of the follow-up commitments, once each."""
        return list(dict.fromkeys([i.item_key for i in self.items] + [f.item_key for f in self.follow_ups]))

    @property
    def empty(self) -> bool:
        return not self.items and not self.follow_ups


@dataclass(frozen=True, slots=True)
class HandoverResult:
    #: The ``handed_over`` event's seq on the server; None when this hand-over had already been written (a retry).
    seq: int | None
    to: str | None
    items: list[str]


@dataclass(frozen=True, slots=True)
class ReceivedItem:
    """An item the member received in a hand-over, as the queue and the shift-start dialog show it."""

    item_key: str
    mention_id: int | None
    by: str
    at: int
    note: str
    #: "handed over by Alex · call her back at 3"
    label: str
    #: None: handed back to the pool (anyone may take it); else the member it was handed to.
    to: str | None
    status: str
    answered: bool
    due_at: int | None
    #: Still the receiver's (not reassigned since, not closed).
    still_open: bool


@dataclass(frozen=True, slots=True)
class ShiftStart:
    """What a member finds at the start of a shift: hand-overs and breaches since their last shift ended."""

    since: int
    handed_over: list[ReceivedItem]
    breached: list[BreachedItem]
    #: Local mention ids of the breached items this copy holds.
    breached_ids: dict[str, int]


class HandoverService:
    """Hand-over between members on the team server, as ``member`` (row security: a member acts as itself)."""

    def __init__(self, db: TeamDb, member: str, clock: Clock, *, mention_ids: MentionIds | None = None) -> None:
        self._repo = HandoverRepo(db)
        self._member = member
        self._clock = clock
        self._mention_ids = mention_ids or _no_ids

    @property
    def member(self) -> str:
        return self._member

    def _ids(self, keys: Sequence[str]) -> dict[str, int]:
        return dict(self._mention_ids(list(keys))) if keys else {}

    async def pending_for(self, member: str | None = None) -> Pending:
        """What ``member`` (default: this one) holds now: claims, assigned open items, unkept follow-ups, notes.

        Raises:
            TeamUnavailable: the server cannot be reached (the dialog says so; nothing is handed over offline).
        """
        who = member or self._member
        items, follow = await self._repo.pending(who)
        pending = Pending(who, items, follow, {})
        return Pending(who, items, follow, self._ids(pending.keys))

    async def hand_over(
        self,
        *,
        to: str | None,
        note: str = "",
        shift_uid: str | None = None,
        pending: Pending | None = None,
        end_shift: bool = True,
    ) -> HandoverResult:
        """Hand what this member holds to ``to`` (a member's name) or back to the pool (None), in one call.

        Args:
            to: the colleague, or None for the pool.
            note: the note for the receiver ("call her back at 3").
            shift_uid: the shift being ended (its hand-over is written once, even when retried); a new one if None.
            pending: what to hand over, as listed in the dialog (default: read now).
            end_shift: also record the shift's end (``shift_ended``, off shift).

        Raises:
            ValueError: handing over to oneself.
            TeamRefused: ``to`` is not a member of the team, or the server refused.
            TeamUnavailable: the server cannot be reached; nothing was handed over.
        """
        if to is not None and to == self._member:
            raise ValueError("Hand over to a colleague or to the pool, not to yourself.")
        listed = pending if pending is not None else await self.pending_for()
        follow_ups = [{"item_key": f.item_key, "promised_at": f.promised_at, **f.data} for f in listed.follow_ups]
        seq = await self._repo.hand_over(
            self._member,
            to=to,
            note=note.strip(),
            shift_uid=shift_uid or str(uuid.uuid4()),
            items=listed.keys,
            follow_ups=follow_ups,
            at=int(self._clock.now()),
            end_shift=end_shift,
        )
        return HandoverResult(seq, to, listed.keys)

    async def received_handovers(self, since: int, member: str | None = None) -> list[ReceivedItem]:
        """Items handed to ``member`` (default: this one) or to the pool since ``since``, newest hand-over first.

        Each is marked "handed over by Alex · note"; ``still_open`` says whether it still waits on the receiver.
        """
        who = member or self._member
        handovers = await self._repo.received(who, since)
        return await self._received(who, handovers)

    async def _received(self, who: str, handovers: Sequence[Handover]) -> list[ReceivedItem]:
        keys = list(dict.fromkeys(k for h in handovers for k in h.items))
        states = await self._repo.items(keys)
        ids = self._ids(keys)
        out: list[ReceivedItem] = []
        seen: set[str] = set()
        for h in sorted(handovers, key=lambda h: h.seq, reverse=True):
            for key in h.items:
                if key in seen:
                    continue  # the latest hand-over of an item is the one that counts
                seen.add(key)
                state = states.get(key)
                status = state.status if state is not None else "unknown"
                assigned = state.assigned_to if state is not None else None
                open_now = state is not None and status in ("new", "open", "waiting") and assigned == h.to
                out.append(
                    ReceivedItem(
                        item_key=key, mention_id=ids.get(key), by=h.author, at=h.at, note=h.note,
                        label=handed_over_by(h.author, h.note), to=h.to, status=status,
                        answered=state.answered if state is not None else False,
                        due_at=state.due_at if state is not None else None, still_open=open_now,
                    )
                )  # fmt: skip
        return out

    async def start_shift(self, shift_uid: str | None = None) -> ShiftStart:
        """Start this member's shift on the server and return what happened since their last one ended.

        Records ``shift_started`` and ``on_shift_since`` (the supervisor view shows who is on shift). "Since" is
        the end of the member's last shift on the team, or the last day when there is none.
        """
        now = int(self._clock.now())
        last = await self._repo.last_shift_end(self._member)
        since = last if last is not None else now - DEFAULT_LOOKBACK_SECONDS
        await self._repo.start_shift(self._member, shift_uid=shift_uid or str(uuid.uuid4()), at=now)
        handed = await self._received(self._member, await self._repo.received(self._member, since))
        breached = await self._repo.breaches(since, now)
        return ShiftStart(since, handed, breached, self._ids([b.item_key for b in breached]))
