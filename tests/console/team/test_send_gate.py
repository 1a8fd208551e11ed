"""The outbox with the team's send gate: no double replies, against real PostgreSQL and the sandbox over loopback.

Two members (each its own PostgreSQL role and SQLite file) answer the same sandbox account; the sandbox counts
what was posted. The gate records each send on the server before the post, in the transaction that checks the
claim and the latest reply, so of two outboxes racing on one item exactly one posts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from console.channels.base import AccountRef
from console.channels.mastodon import MastodonConnector
from console.ports import MemorySecretStore
from console.replies.outbox import GATE_RETRY_SECONDS, GateOutcome, Outbox, SendOutcome
from console.sandbox import SandboxServer
from console.sla.bands import SlaPolicy
from console.sync.inbox import Poller
from console.team.applier import Applier
from console.team.claims import ClaimService, TeamSendGate
from console.team.config import TeamConfig
from console.team.leases import LeaseKeeper
from console.team.replicator import Replicator, push_event
from console.team.service import TeamService
from storage.accounts import SyncStateRepo
from storage.errors import StorageError, TeamUnavailable
from storage.rows import ReplyState
from storage.team.connect import TeamConnection, TeamPool, connect_conninfo, open_pool_conninfo
from storage.team.events import TeamEvent
from storage.team.leases import LeaseRepo
from tests.console.team.claims_support import Copy, Member, open_copy, team
from tests.fakes.clock import FakeClock
from tests.team_pg import TeamPg

ANSWERED = re.compile(r"^(Sam|Alex) answered this at \d\d:\d\d; your reply was not sent\.$")


@dataclass
class Agent:
    """One member's machine: its copy, its outbox with the team's gate, its claims."""

    member: Member
    copy: Copy
    outbox: Outbox
    gate: TeamSendGate
    claims: ClaimService

    def item(self, external_id: str) -> int:
        return self.copy.mention_id(external_id)

    def reply_to(self, external_id: str, text: str, **kwargs: Any) -> int:
        return self.outbox.queue(self.item(external_id), text, **kwargs)


@asynccontextmanager
async def agents(
    team_pg: TeamPg, tmp_path: Path, names: list[str], *, backlog: int = 3, push: bool = True
) -> AsyncIterator[tuple[SandboxServer, dict[str, Agent], list[str]]]:
    """The sandbox with ``backlog`` customer posts, each member's copy synced from it (and pushed, by default).

    Yields the server, the agents by name, and the external ids of the queue items.
    """
    clock = FakeClock()
    server = SandboxServer(backlog=backlog, clock=clock, seed=5)
    server.start()
    try:
        async with AsyncExitStack() as stack:
            members = await stack.enter_async_context(team(team_pg, names))
            client = await stack.enter_async_context(httpx.AsyncClient(timeout=5.0, trust_env=False))
            out: dict[str, Agent] = {}
            for name in names:
                copy = open_copy(tmp_path, name, clock, base_url=server.base_url)
                secrets = MemorySecretStore()
                secrets.set(f"mastodon:{copy.account_id}", server.token)
                ref = AccountRef(copy.account_id, "mastodon", copy.handle, server.base_url)
                connector = MastodonConnector(client, account=ref, secrets=secrets, clock=clock)
                poller = Poller(
                    copy.mentions, copy.accounts, SyncStateRepo(copy.db), {copy.account_id: connector}, clock
                )
                await poller.sync_once()
                member = members[name]
                if push:
                    await copy.push(member)

                async def catch_up(copy: Copy = copy, member: Member = member) -> None:
                    await copy.push(member)  # what Replicator.sync_once does first

                claims = ClaimService(member.claims, copy.local, name, clock, catch_up=catch_up)
                gate = TeamSendGate(member.claims, copy.local, name, catch_up=catch_up, claims=claims)
                outbox = Outbox(
                    copy.replies, copy.mentions, copy.accounts, {copy.account_id: connector}, clock,
                    actor=functools.partial(str, name), rng=random.Random(3), gate=gate,
                )  # fmt: skip
                out[name] = Agent(member, copy, outbox, gate, claims)
            first = next(iter(out.values())).copy
            heads = first.mentions.rows_by_id(first.mentions.queue_ids())
            externals = sorted(row.external_id for row in heads.values())
            yield server, out, externals
    finally:
        server.stop()


def replies_to(server: SandboxServer, external_id: str) -> list[dict[str, Any]]:
    return [s for s in server.statuses_posted() if s["in_reply_to_id"] == external_id]


async def server_events(member: Member, kind: str) -> list[TeamEvent]:
    return [e for e in await member.events.since(0, limit=10_000) if e.kind == kind]


def test_two_outboxes_racing_on_the_same_items_post_each_answer_once(
    team_pg: TeamPg, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with agents(team_pg, tmp_path, ["Sam", "Alex"], backlog=4) as (server, by_name, externals):
            sam, alex = by_name["Sam"], by_name["Alex"]
            queued = {
                ext: (sam.reply_to(ext, f"Sam here, on it ({ext})."), alex.reply_to(ext, f"Alex here ({ext})."))
                for ext in externals
            }
            sam_outcomes, alex_outcomes = await asyncio.gather(sam.outbox.drain(), alex.outbox.drain())

            for ext, (sam_reply, alex_reply) in queued.items():
                assert len(replies_to(server, ext)) == 1, ext  # exactly one answer reached the customer
                pair = sorted([sam_outcomes[sam_reply], alex_outcomes[alex_reply]])
                assert pair == sorted([SendOutcome.SENT, SendOutcome.FAILED])
                loser = sam if sam_outcomes[sam_reply] is SendOutcome.FAILED else alex
                refused = loser.copy.replies.get(sam_reply if loser is sam else alex_reply)
                assert refused is not None and refused.state is ReplyState.FAILED
                winner_name = "Alex" if loser is sam else "Sam"
                assert ANSWERED.match(refused.error) and refused.error.startswith(winner_name)
            assert len(server.statuses_posted()) == len(externals)
            assert len(await server_events(sam.member, "reply_sending")) == len(externals)

    arun(scenario(), timeout=60)


def test_a_colleagues_claim_refuses_the_send_until_the_agent_sends_anyway(
    team_pg: TeamPg, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with agents(team_pg, tmp_path, ["Sam", "Alex"]) as (server, by_name, externals):
            sam, alex = by_name["Sam"], by_name["Alex"]
            ext = externals[0]
            claim = await sam.claims.claim(sam.item(ext))
            assert claim is not None and claim.ours

            reply_id = alex.reply_to(ext, "Alex here: let me check.")
            assert await alex.outbox.drain() == {reply_id: SendOutcome.FAILED}
            refused = alex.copy.replies.get(reply_id)
            assert refused is not None and refused.state is ReplyState.FAILED
            assert (
                refused.error
                == "Sam is replying to this customer; your reply was not sent. Edit it, or send it anyway."
            )
            assert replies_to(server, ext) == []

            alex.outbox.send_anyway(reply_id, reason="Sent over Sam's claim")
            assert await alex.outbox.drain() == {reply_id: SendOutcome.SENT}
            assert len(replies_to(server, ext)) == 1
            assert alex.copy.replies.review_marks([reply_id]) == {reply_id: "Sent over Sam's claim"}
            local = [e for e in alex.copy.events.for_mention(alex.item(ext)) if e.kind == "send_anyway"]
            assert len(local) == 1
            assert json.loads(local[0].data) == {
                "reply_id": reply_id, "reply_key": refused.idempotency_key, "reason": "Sent over Sam's claim"
            }  # fmt: skip

            # The replicator pushes the local audit event; the server already recorded the choice with the send
            # under the same uid, so the team's history holds it once.
            pushes = [
                push_event(change, member="Alex", member_uuid=str(uuid.uuid4()))
                for change in alex.copy.local.outgoing_events(0)
                if change.kind == "send_anyway"
            ]
            await alex.member.events.append(
                [TeamEvent(uuid.UUID(p.uid), p.author, p.at, p.kind, p.item_key, p.data) for p in pushes]
            )
            audit = await server_events(sam.member, "send_anyway")
            assert [(e.author, e.data["reply_key"]) for e in audit] == [("Alex", refused.idempotency_key)]

            # Sam's own reply now comes second: refused, with who answered and when.
            sam_reply = sam.reply_to(ext, "Sam here.")
            assert await sam.outbox.drain() == {sam_reply: SendOutcome.FAILED}
            row = sam.copy.replies.get(sam_reply)
            assert row is not None and ANSWERED.match(row.error) and row.error.startswith("Alex")
            assert len(replies_to(server, ext)) == 1

    arun(scenario(), timeout=60)


def test_offline_from_the_team_a_reply_waits_queued_and_send_anyway_posts_it_for_review(
    team_pg: TeamPg, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with agents(team_pg, tmp_path, ["Sam"]) as (server, by_name, externals):
            sam = by_name["Sam"]
            await sam.member.pool.close()  # cut off from the team server (the channel still answers)
            now = int(sam.copy.clock.now())

            held = sam.reply_to(externals[0], "Thanks, looking into it.")
            assert await sam.outbox.drain() == {held: SendOutcome.WAITING}
            row = sam.copy.replies.get(held)
            assert row is not None and row.state is ReplyState.QUEUED
            assert row.error.startswith("Waiting for the team server: a colleague may be answering")
            assert row.next_attempt_at == now + GATE_RETRY_SECONDS
            assert server.statuses_posted() == []
            assert sam.claims.advice(sam.item(externals[0])).kind.value == "offline"

            sam.outbox.send_anyway(held)
            assert await sam.outbox.drain() == {held: SendOutcome.SENT}
            assert len(replies_to(server, externals[0])) == 1
            assert sam.copy.replies.review_marks([held]) == {
                held: "Sent anyway: a colleague may have been answering this customer."
            }

            # Chosen up front in the composer ("Send anyway" after the offline warning): leaves at once.
            direct = sam.reply_to(externals[1], "On it.", override=True, override_reason="Offline from the team")
            assert await sam.outbox.drain() == {direct: SendOutcome.SENT}
            assert sam.copy.replies.is_override(direct)
            assert sam.copy.replies.review_marks([direct, held]) == {
                direct: "Offline from the team",
                held: "Sent anyway: a colleague may have been answering this customer.",
            }
            kinds = [e.kind for e in sam.copy.events.for_mention(sam.item(externals[1]))]
            assert kinds.count("send_anyway") == 1
            assert len(server.statuses_posted()) == 2

    arun(scenario(), timeout=60)


def test_an_item_the_server_does_not_know_yet_is_pushed_then_recorded_once(
    team_pg: TeamPg, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with agents(team_pg, tmp_path, ["Sam"], push=False) as (server, by_name, externals):
            sam = by_name["Sam"]
            reply_id = sam.reply_to(externals[0], "Hello, we are on it.")
            row = sam.copy.replies.get(reply_id)
            head = sam.copy.mentions.rows_by_id([sam.item(externals[0])])[sam.item(externals[0])]
            assert row is not None
            # Asked twice (a retry after a crash between the record and the post): recorded once, both pass.
            first = await sam.gate.check(row, head, override=False)
            again = await sam.gate.check(row, head, override=False)
            assert first.outcome is GateOutcome.PROCEED and again.outcome is GateOutcome.PROCEED
            recorded = await server_events(sam.member, "reply_sending")
            assert [(e.author, e.data["reply_key"]) for e in recorded] == [("Sam", row.idempotency_key)]

            assert await sam.outbox.drain() == {reply_id: SendOutcome.SENT}
            assert len(replies_to(server, externals[0])) == 1
            assert len(await server_events(sam.member, "reply_sending")) == 1

    arun(scenario(), timeout=60)


def test_while_the_replicator_is_offline_the_gate_answers_at_once_without_the_server(
    team_pg: TeamPg, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with agents(team_pg, tmp_path, ["Sam"]) as (_server, by_name, externals):
            sam = by_name["Sam"]
            offline_gate = TeamSendGate(sam.member.claims, sam.copy.local, "Sam", reachable=lambda: False)
            reply_id = sam.reply_to(externals[0], "Thanks!")
            row = sam.copy.replies.get(reply_id)
            head = sam.copy.mentions.rows_by_id([sam.item(externals[0])])[sam.item(externals[0])]
            assert row is not None
            held = await offline_gate.check(row, head, override=False)
            assert held.outcome is GateOutcome.HOLD and held.reason.startswith("Waiting for the team server")
            passed = await offline_gate.check(row, head, override=True)
            assert passed.outcome is GateOutcome.PROCEED
            assert await server_events(sam.member, "reply_sending") == []  # the server was not asked

    arun(scenario(), timeout=60)


def test_a_reply_held_while_the_team_was_away_leaves_as_soon_as_the_gate_reopens(
    team_pg: TeamPg, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    """Held because the team server was unreachable: when the replicator reaches it again (TeamService calls
    ``reopened``), the reply is due at once, not after GATE_RETRY_SECONDS (the clock does not move here)."""

    async def scenario() -> None:
        async with agents(team_pg, tmp_path, ["Sam"]) as (server, by_name, externals):
            sam = by_name["Sam"]
            reachable = [False]
            gate = TeamSendGate(sam.member.claims, sam.copy.local, "Sam", reachable=lambda: reachable[0])
            sam.outbox.gate = gate  # the outbox subscribes to the gate's reopening
            now = int(sam.copy.clock.now())

            held = sam.reply_to(externals[0], "Thanks, looking into it.")
            other = sam.reply_to(externals[1], "On it.")
            # the later reply of the same account waits behind the held one (queue order)
            assert await sam.outbox.drain() == {held: SendOutcome.WAITING}
            row = sam.copy.replies.get(held)
            assert row is not None and row.next_attempt_at == now + GATE_RETRY_SECONDS
            assert await sam.outbox.drain() == {}  # not due: the 30 s wait

            reachable[0] = True
            gate.reopened()  # the replicator went from offline to live
            assert await sam.outbox.drain() == {held: SendOutcome.SENT, other: SendOutcome.SENT}
            assert len(replies_to(server, externals[0])) == 1 and len(replies_to(server, externals[1])) == 1
            recorded = await server_events(sam.member, "reply_sending")
            assert sorted(e.author for e in recorded) == ["Sam", "Sam"]

    arun(scenario(), timeout=60)


def test_the_team_service_reopens_the_gate_when_the_replicator_reaches_the_server_again(
    team_pg: TeamPg, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    """The wiring of TeamService: the replicator's mode going from offline to live reopens the send gate, and the
    outbox's held reply leaves at once (the clock does not move)."""

    async def scenario() -> None:
        async with agents(team_pg, tmp_path, ["Sam"]) as (server, by_name, externals):
            sam = by_name["Sam"]
            up = [False]

            async def open_pool() -> TeamPool:
                if not up[0]:
                    raise TeamUnavailable("the team server is down")
                return await open_pool_conninfo(team_pg.conninfo, team_pg.schema, min_size=1, max_size=2)

            async def open_listener() -> TeamConnection:
                return await connect_conninfo(team_pg.conninfo, team_pg.schema)

            clock = sam.copy.clock
            member_uuid = str(uuid.uuid4())
            applier = Applier(
                sam.copy.mentions, tmp_path / "Sam.db", member_uuid=member_uuid, plan_for=SlaPolicy().plan,
                now=clock.now,
            )  # fmt: skip
            replicator = Replicator(
                local=sam.copy.local, applier=applier, member="Sam", member_uuid=member_uuid, role="owner",
                server="test", schema=team_pg.schema, open_pool=open_pool, open_listener=open_listener, clock=clock,
                notify=False,
            )  # fmt: skip
            gate = TeamSendGate(
                sam.member.claims,
                sam.copy.local,
                "Sam",
                claims=sam.claims,
                reachable=lambda: replicator.mode != "offline",
            )
            sam.outbox.gate = gate
            config = TeamConfig(f"postgresql://sam@127.0.0.1/test?schema={team_pg.schema}", "Sam", member_uuid)
            leases = LeaseKeeper(LeaseRepo(sam.member.pool, team_pg.schema), sam.copy.accounts, MemorySecretStore(),
                                 "Sam", clock)  # fmt: skip
            TeamService(
                config, db=sam.member.pool, replicator=replicator, claims=sam.claims, leases=leases, send_gate=gate,
                local=sam.copy.local, clock=clock,
            )  # fmt: skip
            try:
                with contextlib.suppress(StorageError):
                    await replicator.sync_once()  # the server is down: offline
                assert replicator.mode == "offline"
                held = sam.reply_to(externals[0], "Thanks, looking into it.")
                assert await sam.outbox.drain() == {held: SendOutcome.WAITING}
                assert await sam.outbox.drain() == {}  # not due: the 30 s wait

                up[0] = True
                await replicator.sync_once()
                assert replicator.mode in ("live", "polling")
                assert await sam.outbox.drain() == {held: SendOutcome.SENT}
                assert len(replies_to(server, externals[0])) == 1
            finally:
                await replicator.aclose()

    arun(scenario(), timeout=60)
