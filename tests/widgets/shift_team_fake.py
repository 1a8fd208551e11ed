"""An in-memory team with shifts (issue 23), for the robot: ``MemoryTeam``'s claims plus what ``TeamService``
gives the shift actions and View → Supervisor… (``handover()``, ``supervisor()``), without a server.

The supervisor's snapshot is built from the claims the in-memory team holds, so the window's "who holds what" can
be checked against them; reassignments and hand-overs are recorded for the robot's checks; a colleague's hand-over
to this member shows at the start of the next shift. The real services run on PostgreSQL in
tests/widgets/test_supervisor_window.py and tests/widgets/test_handover_dialog.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from console.replies.capacity import WaitEstimate
from console.reports.summary import bucket_scores, score_net_easy
from console.team.handover import HandoverResult, Pending, ReceivedItem, ShiftStart
from console.team.supervisor import AgentLine, HeldItem, SupervisorSnapshot
from storage.team.supervisor import PendingItem
from tests.widgets.team_fake import Claim, MemoryClaims, MemoryTeam

ACCOUNT = "mastodon:https://sandbox.example:brand"
COLLEAGUES = ("Sam", "Kim")


def key_of(mention_id: int) -> str:
    return f"{ACCOUNT}#{mention_id}"


def id_of(item_key: str) -> int:
    return int(item_key.rpartition("#")[2])


@dataclass
class Handing:
    """One hand-over as written: who, to whom (None: the pool), the note and the items."""

    by: str
    to: str | None
    note: str
    items: list[str]


@dataclass
class TellingClaims(MemoryClaims):
    """``MemoryClaims`` that tells the team's listeners of our own claims and releases too, as ``ClaimService``
    does (the supervisor view refreshes on them)."""

    async def claim(self, mention_id: int) -> Claim | None:
        new = mention_id not in self.held
        claim = await super().claim(mention_id)
        if new:
            self.changed((mention_id,))
        return claim

    def release(self, mention_id: int) -> None:
        had = mention_id in self.held
        super().release(mention_id)
        if had and mention_id not in self.held:
            self.changed((mention_id,))


@dataclass
class ShiftTeam(MemoryTeam):
    """``MemoryTeam`` with shifts: on shift or not, hand-overs both ways, the supervisor's view and actions."""

    on_shift: bool = False
    shift_since: int | None = None
    reassigned: list[tuple[str, str | None, str, str]] = field(default_factory=list)  # (item, to, note, by)
    released_by_supervisor: list[tuple[str, str]] = field(default_factory=list)  # (item, holder)
    handed: list[Handing] = field(default_factory=list)
    #: Hand-overs colleagues made to this member, shown at the start of the next shift.
    incoming: list[Handing] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.claims = TellingClaims(self.clock, me=self.current.member, changed=self.notify)

    @property
    def member(self) -> str:
        return self.current.member

    def supervisor(self) -> MemorySupervisor:
        return MemorySupervisor(self)

    def handover(self) -> MemoryHandover:
        return MemoryHandover(self)

    def ours(self) -> list[int]:
        return sorted(m for m, c in self.claims.held.items() if c.ours)


class MemorySupervisor:
    """``SupervisorView`` over the in-memory team (a supervisor's login: PostgreSQL's refusals are not modelled)."""

    def __init__(self, team: ShiftTeam) -> None:
        self._team = team

    async def snapshot(self) -> SupervisorSnapshot:
        team = self._team
        now = int(team.clock.now())
        nobody = score_net_easy(0, *bucket_scores([]))
        holding = {name: 0 for name in (team.member, *COLLEAGUES)}
        held = []
        for mention_id, claim in sorted(team.claims.held.items()):
            holder = team.member if claim.ours else claim.holder
            held.append(HeldItem(key_of(mention_id), mention_id, holder, int(now - claim.since), False))
            holding[holder] = holding.get(holder, 0) + 1
        agents = [
            AgentLine(
                name=name, role=team.current.role if name == team.member else "agent",
                on_shift=team.on_shift if name == team.member else True,
                on_shift_since=team.shift_since if name == team.member else now - 3600,
                online=True, holding=count, replies=0, first_response_s=None, net_easy=nobody,
            )
            for name, count in holding.items()
        ]  # fmt: skip
        return SupervisorSnapshot(
            at=now, shift_since=now - 3600, agents=agents, held=held, channels=[], waiting=0, breaches=[],
            expected_wait=WaitEstimate(ahead=0, replies=0, window_seconds=3600, seconds=None), net_easy=nobody,
            first_response_s=None,
        )  # fmt: skip

    async def reassign(self, item_key: str, to: str | None, note: str = "") -> None:
        self._team.reassigned.append((item_key, to, note, self._team.member))

    async def release_stale(self, item_key: str) -> str | None:
        claim = self._team.claims.held.pop(id_of(item_key), None)
        if claim is None:
            return None
        holder = self._team.member if claim.ours else claim.holder
        self._team.released_by_supervisor.append((item_key, holder))
        self._team.notify((id_of(item_key),))
        return holder


class MemoryHandover:
    """``HandoverService`` over the in-memory team: what we hold is our claims; handing over releases them."""

    def __init__(self, team: ShiftTeam) -> None:
        self._team = team

    @property
    def member(self) -> str:
        return self._team.member

    async def pending_for(self, member: str | None = None) -> Pending:
        now = int(self._team.clock.now())
        ids = self._team.ours()
        items = [PendingItem(key_of(m), True, False, "open", now - 600, now + 1200, False, []) for m in ids]
        return Pending(self.member, items, [], {key_of(m): m for m in ids})

    async def hand_over(
        self,
        *,
        to: str | None,
        note: str = "",
        shift_uid: str | None = None,
        pending: Pending | None = None,
        end_shift: bool = True,
    ) -> HandoverResult:
        if to == self.member:
            raise ValueError("Hand over to a colleague or to the pool, not to yourself.")
        listed = pending if pending is not None else await self.pending_for()
        team = self._team
        for key in listed.keys:
            claim = team.claims.held.get(id_of(key))
            if claim is not None and claim.ours:
                del team.claims.held[id_of(key)]
        team.handed.append(Handing(self.member, to, note, listed.keys))
        if end_shift:
            team.on_shift, team.shift_since = False, None
        team.notify(tuple(id_of(k) for k in listed.keys))
        return HandoverResult(len(team.handed), to, listed.keys)

    async def start_shift(self, shift_uid: str | None = None) -> ShiftStart:
        team = self._team
        now = int(team.clock.now())
        team.on_shift, team.shift_since = True, now
        received = [
            ReceivedItem(
                item_key=key, mention_id=id_of(key), by=h.by, at=now, note=h.note,
                label=f"handed over by {h.by}", to=h.to, status="open", answered=False, due_at=None, still_open=True,
            )
            for h in team.incoming
            for key in h.items
        ]  # fmt: skip
        team.incoming.clear()
        return ShiftStart(now - 3600, received, [], {})


def a_colleague_hands_over(team: ShiftTeam, by: str, mention_ids: list[int], note: str) -> Handing:
    """``by`` ends their shift handing ``mention_ids`` to this member (seen at this member's next shift start)."""
    handing = Handing(by, team.member, note, [key_of(m) for m in mention_ids])
    team.incoming.append(handing)
    return handing
