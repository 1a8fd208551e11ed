"""Poller leases against a real PostgreSQL: one member's machine polls an account; a colleague takes it over.

Lease expiry runs on the server's clock, so the takeover test uses a one-second TTL and waits for the server to
let go (no timed assertions). The poll-gate test polls the sandbox over loopback and counts its requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from console.channels.base import AccountRef
from console.channels.mastodon import MastodonConnector
from console.ports import MemorySecretStore
from console.sandbox import SandboxServer
from console.sync.inbox import Poller
from console.team.leases import LeaseKeeper
from storage.accounts import SyncStateRepo
from storage.rows import Health
from tests.console.team.claims_support import T0, Copy, Member, open_copy, team
from tests.fakes.clock import FakeClock
from tests.team_pg import TeamPg


def keeper(copy: Copy, member: Member, *, ttl: float = 60.0, token: bool = True) -> LeaseKeeper:
    secrets = MemorySecretStore()
    if token:
        secrets.set(f"mastodon:{copy.account_id}", "a-token")
    return LeaseKeeper(member.leases, copy.accounts, secrets, member.name, copy.clock, ttl=ttl)


async def holder_on_server(member: Member, copy: Copy) -> str | None:
    row = (await member.leases.holders()).get(copy.account_key)
    return None if row is None else row.holder


def test_one_member_holds_the_lease_and_a_colleague_takes_it_over_after_expiry(
    team_pg: TeamPg, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with team(team_pg, ["Sam", "Alex"]) as members:
            sam_copy = open_copy(tmp_path, "sam", FakeClock(T0))
            alex_copy = open_copy(tmp_path, "alex", FakeClock(T0))
            sam = keeper(sam_copy, members["Sam"], ttl=1.0)
            alex = keeper(alex_copy, members["Alex"], ttl=1.0)
            took_over: list[str] = []
            alex.subscribe(lambda: took_over.append("Alex"))

            await sam.tick()
            await alex.tick()
            assert sam.may_poll(sam_copy.account_id)
            assert not alex.may_poll(alex_copy.account_id)
            assert alex.refusal(alex_copy.account_id) == "Polled by Sam's machine"
            assert await holder_on_server(members["Alex"], alex_copy) == "Sam"

            # Sam's machine goes away (no more renewals): once the server's clock passes the expiry, Alex's next
            # round takes the account over.
            for _ in range(100):
                await alex.tick()
                if alex.may_poll(alex_copy.account_id):
                    break
                await asyncio.sleep(0.1)
            assert alex.may_poll(alex_copy.account_id) and took_over == ["Alex"]
            assert await holder_on_server(members["Sam"], sam_copy) == "Alex"

            await sam.tick()  # Sam is back: Alex holds it now, so Sam's machine leaves it alone
            assert not sam.may_poll(sam_copy.account_id)
            assert sam.refusal(sam_copy.account_id) == "Polled by Alex's machine"

            await alex.aclose()  # closing the app hands the lease back: Sam takes it at the next round
            await sam.tick()
            assert sam.may_poll(sam_copy.account_id)

    arun(scenario(), timeout=40)


def test_the_poll_gate_skips_the_non_holders_poll_and_says_whose_machine_polls(
    team_pg: TeamPg, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        server = SandboxServer(backlog=2, clock=clock, seed=5)
        server.start()
        try:
            async with (
                team(team_pg, ["Sam", "Alex"]) as members,
                httpx.AsyncClient(timeout=5.0, trust_env=False) as client,
            ):
                pollers: dict[str, Poller] = {}
                copies: dict[str, Copy] = {}
                keepers: dict[str, LeaseKeeper] = {}
                for name in ("Sam", "Alex"):
                    copy = open_copy(tmp_path, name, clock, base_url=server.base_url)
                    secrets = MemorySecretStore()
                    secrets.set(f"mastodon:{copy.account_id}", server.token)
                    ref = AccountRef(copy.account_id, "mastodon", copy.handle, server.base_url)
                    connector = MastodonConnector(client, account=ref, secrets=secrets, clock=clock)
                    keepers[name] = LeaseKeeper(members[name].leases, copy.accounts, secrets, name, clock)
                    await keepers[name].tick()  # Sam first: Sam's machine holds the lease
                    pollers[name] = Poller(
                        copy.mentions, copy.accounts, SyncStateRepo(copy.db), {copy.account_id: connector}, clock,
                        poll_gate=keepers[name],
                    )  # fmt: skip
                    copies[name] = copy

                before = len(server.requests)
                assert await pollers["Alex"].sync_once() == []
                assert len(server.requests) == before  # Alex's machine did not call the channel at all
                account = copies["Alex"].accounts.get(copies["Alex"].account_id)
                assert account is not None
                assert (account.health, account.health_reason) == (Health.OK, "Polled by Sam's machine")

                reports = await pollers["Sam"].sync_once()
                assert [r.stored for r in reports] == [2] and len(server.requests) > before
                assert copies["Sam"].mentions.queue_ids()

                # The lease moves to Alex (Sam hands it back): Alex polls, and the health line clears.
                await keepers["Sam"].aclose()
                await keepers["Alex"].tick()
                reports = await pollers["Alex"].sync_once()
                assert [r.stored for r in reports] == [2]
                account = copies["Alex"].accounts.get(copies["Alex"].account_id)
                assert account is not None and (account.health, account.health_reason) == (Health.OK, "")
        finally:
            server.stop()

    arun(scenario(), timeout=40)


def test_cut_off_from_the_team_a_machine_keeps_polling_what_it_leased_last(
    team_pg: TeamPg, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with team(team_pg, ["Sam", "Alex", "Kim"]) as members:
            copies = {name: open_copy(tmp_path, name, FakeClock(T0)) for name in ("Sam", "Alex", "Kim")}
            keepers = {name: keeper(copies[name], members[name]) for name in ("Sam", "Alex")}
            await keepers["Sam"].tick()
            await keepers["Alex"].tick()
            sam_account, alex_account = copies["Sam"].account_id, copies["Alex"].account_id

            await members["Sam"].pool.close()
            await members["Alex"].pool.close()
            await keepers["Sam"].tick()
            await keepers["Alex"].tick()
            assert keepers["Sam"].may_poll(sam_account)  # still polls: it held the lease last
            assert not keepers["Alex"].may_poll(alex_account)  # Sam's machine still polls it
            assert keepers["Alex"].refusal(alex_account) == "Polled by Sam's machine"

            # A machine that never reached the team server polls like a solo install (a duplicate fetch is
            # stored once; a missed mention is worse).
            kim = keeper(copies["Kim"], members["Kim"])
            await members["Kim"].pool.close()
            await kim.tick()
            assert kim.may_poll(copies["Kim"].account_id)

    arun(scenario(), timeout=40)


def test_an_account_without_a_token_or_with_an_expired_sign_in_is_left_to_a_colleague(
    team_pg: TeamPg, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with team(team_pg, ["Sam", "Alex"]) as members:
            sam_copy = open_copy(tmp_path, "sam", FakeClock(T0))
            alex_copy = open_copy(tmp_path, "alex", FakeClock(T0))
            sam = keeper(sam_copy, members["Sam"], token=False)
            await sam.tick()
            assert not sam.may_poll(sam_copy.account_id)
            assert "no sign-in" in sam.refusal(sam_copy.account_id)
            assert await holder_on_server(members["Sam"], sam_copy) is None

            alex = keeper(alex_copy, members["Alex"])
            await alex.tick()
            assert alex.may_poll(alex_copy.account_id)
            # Alex's sign-in expires: the lease is handed back at once for a colleague whose sign-in works.
            alex_copy.accounts.set_health(alex_copy.account_id, Health.AUTH_EXPIRED, "sign-in expired")
            await alex.tick()
            assert not alex.may_poll(alex_copy.account_id)
            assert await holder_on_server(members["Alex"], alex_copy) is None

    arun(scenario(), timeout=40)
