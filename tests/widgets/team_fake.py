"""In-memory stand-ins for the running team (``TeamService``) and File → Team…'s operations (``TeamAdmin``), for
widget tests and the robot: they satisfy the window's ports (widgets/claims.py, widgets/team_dialog.py) the way the
real services do, without a server. The real ones run against PostgreSQL in tests/widgets/test_team_window.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from console.team.replicator import TeamChange
from tests.fakes.clock import FakeClock


@dataclass(frozen=True)
class Claim:
    mention_id: int
    holder: str
    since: float
    expires_at: float
    ours: bool


@dataclass(frozen=True)
class Advice:
    kind: str
    holder: str = ""
    since: float | None = None


@dataclass(frozen=True)
class Status:
    member: str = "Alex"
    role: str = "agent"
    server: str = "office-pc:5432/care"
    mode: str = "live"
    since: float = 0.0
    reason: str = ""
    to_push: int = 0
    conflicts: int = 0


@dataclass
class MemoryClaims:
    """Claims as ClaimService keeps them, in memory: first come holds it; ours are released by us only."""

    clock: FakeClock
    me: str = "Alex"
    held: dict[int, Claim] = field(default_factory=dict)
    typed: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    queue: list[int] = field(default_factory=list)  # what take_next hands out, most urgent first
    changed: Callable[[tuple[int, ...]], None] = lambda _ids: None

    def claim_of(self, mention_id: int) -> Claim | None:
        return self.held.get(mention_id)

    def claims_for(self, mention_ids: Sequence[int]) -> Mapping[int, Claim]:
        return {m: self.held[m] for m in mention_ids if m in self.held}

    async def claim(self, mention_id: int) -> Claim | None:
        if mention_id not in self.held:
            now = self.clock.now()
            self.held[mention_id] = Claim(mention_id, self.me, now, now + 90, True)
        return self.held[mention_id]

    def advice(self, mention_id: int) -> Advice:
        claim = self.held.get(mention_id)
        if claim is not None and not claim.ours:
            return Advice("claimed", claim.holder, claim.since)
        return Advice("ok")

    def typing(self, mention_id: int) -> None:
        self.typed.append(mention_id)

    def release(self, mention_id: int) -> None:
        self.released.append(mention_id)
        if (claim := self.held.get(mention_id)) is not None and claim.ours:
            del self.held[mention_id]

    async def take_next(self) -> int | None:
        while self.queue:
            mention_id = self.queue.pop(0)
            if mention_id not in self.held:
                await self.claim(mention_id)
                return mention_id
        return None

    def colleague(self, mention_id: int, holder: str = "Sam") -> None:
        """A colleague opened the reply box on this item (their claim reaches us through the mirror)."""
        now = self.clock.now()
        self.held[mention_id] = Claim(mention_id, holder, now, now + 90, False)
        self.changed((mention_id,))


@dataclass
class MemoryTeam:
    clock: FakeClock
    claims: MemoryClaims = field(init=False)
    current: Status = field(default_factory=Status)
    listeners: list[Callable[[TeamChange], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.claims = MemoryClaims(self.clock, changed=self.notify)

    def status(self) -> Status:
        return self.current

    def subscribe(self, listener: Callable[[Any], None]) -> None:
        self.listeners.append(listener)

    def notify(self, claims: tuple[int, ...] = ()) -> None:
        for listener in self.listeners:
            listener(TeamChange(claims=claims))


@dataclass
class Hosted:
    connection_string: str
    fingerprint: str


@dataclass
class MemorySetup:
    """What File → Team… calls, in memory: a join fails with a plain reason until the password is right."""

    current: Status | None = None
    joined: list[tuple[str, str]] = field(default_factory=list)
    invited: list[tuple[str, str]] = field(default_factory=list)

    def status(self) -> Status | None:
        return self.current

    async def online_members(self) -> Sequence[str]:
        return ["Sam", "Robin"] if self.current is not None else []

    async def join(self, dsn: str, password: str | None, member: str) -> str:
        if password != "right":
            raise RuntimeError("The team server refused the password for this connection string.")
        self.joined.append((dsn, member))
        self.current = Status(member=member)
        return "You joined the team. Your queue is catching up."

    async def host(self, member: str) -> Hosted:
        self.current = Status(member=member, role="owner", server="192.168.1.20:5432/care")
        return Hosted("postgresql://alex@192.168.1.20:5432/care?fingerprint=AB:CD", "AB:CD")

    async def leave(self) -> str:
        self.current = None
        return "You left the team; your copy stays here as your own queue."

    async def invite(self, name: str, role: str) -> str:
        self.invited.append((name, role))
        return f"postgresql://{name.lower()}:one-time@192.168.1.20:5432/care"
