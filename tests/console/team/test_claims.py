"""ClaimService against a real PostgreSQL and real SQLite copies: claim on compose, expiry, take next, advice.

Each member logs in as its own PostgreSQL role; each has its own SQLite file. Expiry uses the server's clock, so
those tests use a claim TTL of one second and wait for the server to let go (no timed assertions).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from console.team.claims import AdviceKind, ClaimService
from tests.console.team.claims_support import T0, Copy, Member, open_copy, team
from tests.fakes.clock import FakeClock
from tests.team_pg import TeamPg


def service(copy: Copy, member: Member, **kwargs: Any) -> ClaimService:
    return ClaimService(member.claims, copy.local, member.name, copy.clock, **kwargs)


async def server_claims(member: Member) -> dict[str, tuple[str, float]]:
    return {row.item_key: (row.holder, row.expires_at) for row in await member.claims.active()}


async def events_of(member: Member, kind: str) -> list[tuple[str, str | None]]:
    return [(e.author, e.item_key) for e in await member.events.since(0, limit=10_000) if e.kind == kind]


def test_two_agents_claim_one_item_one_wins_and_the_other_sees_who(
    team_pg: TeamPg, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with team(team_pg, ["Sam", "Alex"]) as members:
            sam_copy = open_copy(tmp_path, "sam", FakeClock(T0 + 60))
            alex_copy = open_copy(tmp_path, "alex", FakeClock(T0 + 60))
            sam_id = sam_copy.post("101", T0)
            alex_id = alex_copy.post("101", T0)  # the same message, fetched by both machines
            await sam_copy.push(members["Sam"])
            sam, alex = service(sam_copy, members["Sam"]), service(alex_copy, members["Alex"])

            mine, theirs = await asyncio.gather(sam.claim(sam_id), alex.claim(alex_id))
            assert mine is not None and theirs is not None
            winner = mine.holder
            assert theirs.holder == winner  # both see the one holder
            assert [mine.ours, theirs.ours].count(True) == 1
            loser = alex if winner == "Sam" else sam
            loser_id = alex_id if winner == "Sam" else sam_id

            # The loser's mirror shows the colleague, and Send would ask first, in plain words.
            view = loser.claim_of(loser_id)
            assert view is not None and view.holder == winner and not view.ours
            advice = loser.advice(loser_id)
            assert advice.kind is AdviceKind.CLAIMED and advice.holder == winner
            question = advice.question(view.since + 40)
            assert question == f"{winner} is replying to this customer (40 s). Send yours anyway?"
            assert await events_of(members["Sam"], "claimed") == [(winner, sam_copy.key("101"))]

    arun(scenario(), timeout=30)


def test_an_expired_claim_is_taken_over_and_the_old_holder_learns_it(
    team_pg: TeamPg, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with team(team_pg, ["Sam", "Alex"]) as members:
            sam_copy = open_copy(tmp_path, "sam", FakeClock(T0 + 60))
            alex_copy = open_copy(tmp_path, "alex", FakeClock(T0 + 60))
            sam_id, alex_id = sam_copy.post("7", T0), alex_copy.post("7", T0)
            await sam_copy.push(members["Sam"])
            sam = service(sam_copy, members["Sam"], ttl=1.0)
            alex = service(alex_copy, members["Alex"], ttl=1.0)

            first = await sam.claim(sam_id)
            assert first is not None and first.ours
            seen = await alex.claim(alex_id)
            assert seen is not None and seen.holder == "Sam"

            # Sam walks away: after the server's clock passes the expiry, Alex's claim takes it.
            taken = None
            for _ in range(100):
                taken = await alex.claim(alex_id)
                assert taken is not None
                if taken.ours:
                    break
                await asyncio.sleep(0.1)
            assert taken is not None and taken.ours and taken.holder == "Alex"

            # Sam types again: the renewal fails, and the claim taken anew shows Alex's.
            sam_copy.clock.advance(1)
            sam.typing(sam_id)
            await sam.settled()
            view = sam.claim_of(sam_id)
            assert view is not None and view.holder == "Alex" and not view.ours
            assert (await server_claims(members["Sam"]))[sam_copy.key("7")][0] == "Alex"

    arun(scenario(), timeout=30)


def test_typing_renews_at_most_once_a_third_of_the_ttl_and_release_frees_the_item(
    team_pg: TeamPg, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with team(team_pg, ["Sam"]) as members:
            copy = open_copy(tmp_path, "sam", FakeClock(T0 + 60))
            mention_id = copy.post("55", T0)
            await copy.push(members["Sam"])
            sam = service(copy, members["Sam"], ttl=90.0)
            key = copy.key("55")
            repaint: list[list[int]] = []
            sam.subscribe(lambda ids: repaint.append(list(ids)))

            assert (await sam.claim(mention_id)) is not None
            assert repaint == [[mention_id]]  # the window repaints the claimed row at once
            first_expiry = (await server_claims(members["Sam"]))[key][1]
            sam.typing(mention_id)  # too soon: no renewal
            await sam.settled()
            assert (await server_claims(members["Sam"]))[key][1] == first_expiry

            copy.clock.advance(31)  # past ttl / 3
            sam.typing(mention_id)
            sam.typing(mention_id)  # the second keystroke in the same instant schedules nothing more
            await sam.settled()
            renewed = (await server_claims(members["Sam"]))[key][1]
            assert renewed > first_expiry

            sam.release(mention_id)
            await sam.settled()
            assert repaint[-1] == [mention_id]
            assert key not in await server_claims(members["Sam"])
            assert sam.claim_of(mention_id) is None
            assert await events_of(members["Sam"], "released") == [("Sam", key)]

    arun(scenario(), timeout=30)


def test_an_idle_composer_stops_renewing_its_claim(team_pg: TeamPg, tmp_path: Path, arun: Callable[..., Any]) -> None:
    async def scenario() -> None:
        async with team(team_pg, ["Sam"]) as members:
            copy = open_copy(tmp_path, "sam", FakeClock(T0 + 60))
            mention_id = copy.post("9", T0)
            await copy.push(members["Sam"])
            sam = service(copy, members["Sam"], ttl=90.0, idle_seconds=300.0)
            key = copy.key("9")
            await sam.claim(mention_id)
            before = (await server_claims(members["Sam"]))[key][1]

            copy.clock.advance(60)
            await sam.renew_due()  # open and used a minute ago: renewed
            renewed = (await server_claims(members["Sam"]))[key][1]
            assert renewed > before

            copy.clock.advance(300)
            await sam.renew_due()  # nobody typed for five minutes: left to expire
            assert (await server_claims(members["Sam"]))[key][1] == renewed

    arun(scenario(), timeout=30)


def test_take_next_hands_concurrent_takers_distinct_items_most_urgent_first(
    team_pg: TeamPg, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        names = ["Sam", "Alex", "Kim"]
        async with team(team_pg, names) as members:
            copies = {name: open_copy(tmp_path, name, FakeClock(T0 + 600)) for name in names}
            for copy in copies.values():
                for n in range(6):
                    copy.post(str(200 + n), T0 + n)
            await copies["Sam"].push(members["Sam"])
            services = {name: service(copies[name], members[name]) for name in names}

            takers = [name for name in names for _ in range(2)]
            taken = await asyncio.gather(*(services[name].take_next() for name in takers))
            keys = [copies[name].local.item_keys([mid])[mid] for name, mid in zip(takers, taken, strict=True) if mid]
            assert len(keys) == 6 and len(set(keys)) == 6  # every item once, none twice
            assert await services["Sam"].take_next() is None  # nothing left unclaimed
            holders = await server_claims(members["Sam"])
            assert sorted(holder for holder, _ in holders.values()) == sorted(names * 2)

            # Most urgent first: a lone taker on a fresh pool gets the oldest item.
            for name, mid in zip(takers, taken, strict=True):
                assert mid is not None
                services[name].release(mid)
            await asyncio.gather(*(s.settled() for s in services.values()))
            first = await services["Kim"].take_next()
            assert first == copies["Kim"].mention_id("200")

    arun(scenario(), timeout=40)


def test_take_next_catches_up_when_the_item_is_not_local_yet(
    team_pg: TeamPg, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with team(team_pg, ["Sam", "Alex"]) as members:
            sam_copy = open_copy(tmp_path, "sam", FakeClock(T0 + 60))
            alex_copy = open_copy(tmp_path, "alex", FakeClock(T0 + 60))
            sam_copy.post("300", T0)
            await sam_copy.push(members["Sam"])
            caught_up: list[int] = []

            async def catch_up() -> None:
                # What the replicator's pull does for Alex: the colleague's message lands in the local copy.
                caught_up.append(alex_copy.post("300", T0))

            alex = service(alex_copy, members["Alex"], catch_up=catch_up)
            mention_id = await alex.take_next()
            assert caught_up and mention_id == caught_up[0]
            view = alex.claim_of(mention_id)
            assert view is not None and view.ours

    arun(scenario(), timeout=30)


def test_offline_claim_is_none_and_advice_says_offline(
    team_pg: TeamPg, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    async def scenario() -> None:
        async with team(team_pg, ["Sam"]) as members:
            copy = open_copy(tmp_path, "sam", FakeClock(T0 + 60))
            mention_id = copy.post("1", T0)
            await copy.push(members["Sam"])
            sam = service(copy, members["Sam"])
            assert sam.advice(mention_id).kind is AdviceKind.OK
            await members["Sam"].pool.close()  # the team server is gone for this member

            assert await sam.claim(mention_id) is None
            advice = sam.advice(mention_id)
            assert advice.kind is AdviceKind.OFFLINE
            assert "offline from the team" in advice.question(copy.clock.now())
            assert await sam.take_next() is None
            sam.typing(mention_id)
            sam.release(mention_id)  # fire and forget: tolerant of the server being away
            await sam.settled()
            await sam.aclose()

    arun(scenario(), timeout=30)


def test_a_claim_left_by_an_earlier_session_is_released_not_left_to_expire(
    team_pg: TeamPg, tmp_path: Path, arun: Callable[..., Any]
) -> None:
    """After a crash the member's claims sit on the server for the full TTL: the new session's release of the
    composer (the mirror says the claim is ours) and the start-up sweep (release_own) free them."""

    async def scenario() -> None:
        async with team(team_pg, ["Sam", "Alex"]) as members:
            copy = open_copy(tmp_path, "sam", FakeClock(T0 + 60))
            first_id, second_id, third_id = copy.post("1", T0), copy.post("2", T0), copy.post("3", T0)
            await copy.push(members["Sam"])
            crashed = service(copy, members["Sam"])
            for mention_id in (first_id, second_id, third_id):
                view = await crashed.claim(mention_id)
                assert view is not None and view.ours
            # The app dies here: no aclose, no releases. A colleague also holds nothing of Sam's.

            fresh = service(copy, members["Sam"])
            await fresh.refresh()  # the mirror (kept in the local copy) says which claims are ours
            mirrored = fresh.claim_of(first_id)
            assert mirrored is not None and mirrored.ours
            fresh.release(first_id)  # the composer reopened on it and closed: not opened by this session
            await fresh.settled()
            assert copy.key("1") not in await server_claims(members["Sam"])
            assert fresh.claim_of(first_id) is None

            # The start-up sweep: every claim of Sam's left from the crashed session, except an open composer's.
            view = await fresh.claim(third_id)
            assert view is not None and view.ours
            alex_copy = open_copy(tmp_path, "alex", FakeClock(T0 + 60))
            alex_id = alex_copy.post("4", T0)
            await alex_copy.push(members["Alex"])
            alex = service(alex_copy, members["Alex"])
            assert await alex.claim(alex_id) is not None
            assert await fresh.release_own() == 1
            left = await server_claims(members["Sam"])
            assert {k: holder for k, (holder, _) in left.items()} == {
                copy.key("3"): "Sam",
                alex_copy.key("4"): "Alex",
            }
            assert await events_of(members["Sam"], "released") == [("Sam", copy.key("1")), ("Sam", copy.key("2"))]

    arun(scenario(), timeout=30)
