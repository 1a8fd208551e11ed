"""The supervisor view (issue 23 item 2) on a real PostgreSQL, and the roles behind its actions (item 4).

Alex and Sam are agents, Pat the supervisor, each logged in as their own role. The snapshot is checked against the
events written here; a supervisor's reassignment and release of a stale claim are events with their author; an
agent trying either is refused by PostgreSQL, not only by the window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from console.team.handover import HandoverService
from console.team.supervisor import SupervisorView
from storage.errors import TeamRefused
from storage.team.claims import ClaimRepo
from storage.team.members import MemberRepo
from tests.console.team.shift_support import Team, team
from tests.fakes.clock import FakeClock
from tests.team_pg import TeamPg

T0 = 1_767_225_600  # a whole hour
NOW = T0 + 3000
ROLES = {"alex": "agent", "sam": "agent", "pat": "supervisor"}
BLUESKY = "bluesky:https://bsky.example:care.example"


def run(pg: TeamPg, body: Callable[[Team], Awaitable[None]]) -> None:
    async def main() -> None:
        async with team(pg, ROLES) as t:
            await body(t)

    asyncio.run(main())


async def _reply(t: Team, agent: str, item: str, at: int, reply_key: str) -> None:
    data = {"reply_key": reply_key, "external_id": f"r-{reply_key}", "url": "", "text": "hi", "purpose": "reply"}
    await t.event(agent, at, "reply_sent", item, {**data, "posted_at": at})


async def _survey(t: Team, agent: str, item: str, at: int, score: int) -> None:
    await t.event(agent, at, "survey_sent", item, {"reply_key": f"s-{item}", "customer": "ana"})
    await t.event("sam", at + 60, "survey_answered", item, {"reply_key": f"s-{item}", "score": score, "comment": ""})


async def _a_shift(t: Team) -> dict[str, str]:
    """Two agents on shift since T0 - 1 h; a queue with answered, late, waiting and new items on two channels."""
    clock = FakeClock(T0 - 3600)
    for name in ("alex", "sam"):
        await HandoverService(t.pools[name], name, clock).start_shift(f"shift-{name}")
    await MemberRepo(t.pools["alex"], t.schema).heartbeat("alex")
    items = {
        "on_time": await t.mention("1", T0 - 2000),
        "late": await t.mention("2", T0 - 1500),  # due T0 + 300, answered at T0 + 900
        "waiting": await t.mention("3", T0 - 1700),  # due T0 + 100, nobody answered: breached this hour
        "new": await t.mention("4", T0 + 2000),  # due after NOW
        "sky_waiting": await t.mention("5", T0 - 600, account=BLUESKY, customer="bo"),
        "sky_answered": await t.mention("6", T0 - 900, account=BLUESKY, customer="bo"),
    }
    await _reply(t, "alex", items["on_time"], T0 - 1880, "a1")  # 120 s
    await _reply(t, "sam", items["late"], T0 + 900, "s1")  # 2,400 s
    await _reply(t, "alex", items["sky_answered"], T0 - 600, "a2")  # 300 s
    await _survey(t, "alex", items["on_time"], T0 - 1000, 1)
    await _survey(t, "alex", items["sky_answered"], T0 - 300, 2)
    await _survey(t, "sam", items["late"], T0 + 1000, 6)
    return items


def test_the_snapshot_shows_the_team_now(team_pg: TeamPg) -> None:
    async def body(t: Team) -> None:
        items = await _a_shift(t)
        assert await ClaimRepo(t.pools["alex"], t.schema).claim(items["new"], "alex", 600) is not None
        assert await ClaimRepo(t.pools["sam"], t.schema).claim(items["waiting"], "sam", 0.05) is not None
        await asyncio.sleep(0.2)  # Sam's machine went away: the claim expired on the server's clock

        ids = {items["waiting"]: 3, items["sky_waiting"]: 5}
        view = SupervisorView(
            t.pools["pat"],
            t.schema,
            "pat",
            FakeClock(NOW),
            mention_ids=lambda keys: {k: ids[k] for k in keys if k in ids},
        )
        snap = await view.snapshot()

        agents = {a.name: a for a in snap.agents}
        assert snap.on_shift == ["alex", "sam"] and snap.online == ["alex"]
        assert snap.shift_since == T0 - 3600
        assert (agents["alex"].holding, agents["sam"].holding) == (1, 0)  # an expired claim holds nothing
        held = {h.item_key: h for h in snap.held}
        assert not held[items["new"]].stale and held[items["waiting"]].stale and held[items["waiting"]].holder == "sam"
        assert held[items["waiting"]].mention_id == 3

        # First responses per agent and channel (medians of the first replies of the shift).
        assert agents["alex"].first_response_s == pytest.approx(210.0) and agents["alex"].replies == 2
        assert agents["sam"].first_response_s == pytest.approx(2400.0)
        channels = {c.channel: c for c in snap.channels}
        assert channels["mastodon"].first_response_s == pytest.approx(1260.0)
        assert channels["bluesky"].first_response_s == pytest.approx(300.0)
        assert snap.first_response_s == pytest.approx(300.0)

        # Net Easy pooled from counts: Alex 2 easy; Sam 1 difficult; the team 2 easy and 1 difficult of 3.
        assert (agents["alex"].net_easy.easy, agents["alex"].net_easy.n) == (2, 2)
        assert agents["sam"].net_easy.score == pytest.approx(-100.0)
        assert snap.net_easy.score == pytest.approx(100.0 * (2 - 1) / 3)
        assert channels["mastodon"].net_easy.n == 2 and channels["bluesky"].net_easy.score == pytest.approx(100.0)

        # The oldest waiting item per channel, and this hour's breaches (late and still unanswered).
        assert channels["mastodon"].oldest_item == items["waiting"] and channels["mastodon"].oldest_mention_id == 3
        assert channels["mastodon"].oldest_wait_s == NOW - (T0 - 1700)
        assert channels["bluesky"].oldest_item == items["sky_waiting"]
        assert snap.waiting == 3
        breaches = {b.item_key: b for b in snap.breaches}
        assert set(breaches) == {items["waiting"], items["late"], items["sky_waiting"]}
        assert breaches[items["late"]].answered_at == T0 + 900 and breaches[items["waiting"]].answered_at is None
        assert snap.expected_wait.ahead == 3 and snap.expected_wait.replies == 3

        # An agent's action shows in the next snapshot.
        await ClaimRepo(t.pools["alex"], t.schema).claim(items["sky_waiting"], "alex", 600)
        again = await view.snapshot()
        assert {a.name: a.holding for a in again.agents}["alex"] == 2

    run(team_pg, body)


def test_a_supervisor_reassigns_and_releases_a_stale_claim_each_an_event_with_its_author(team_pg: TeamPg) -> None:
    async def body(t: Team) -> None:
        items = await _a_shift(t)
        await ClaimRepo(t.pools["sam"], t.schema).claim(items["waiting"], "sam", 0.05)
        await asyncio.sleep(0.2)
        view = SupervisorView(t.pools["pat"], t.schema, "pat", FakeClock(NOW))

        await view.reassign(items["new"], "alex", "  she asked for Alex ")
        assert await t.rows("SELECT assigned_to FROM items WHERE key = %s", items["new"]) == [("alex",)]
        assert await view.release_stale(items["waiting"]) == "sam"
        assert await t.rows("SELECT count(*) FROM claims") == [(0,)]
        assert await view.release_stale(items["waiting"]) is None  # nothing left to release

        audit = await t.rows(
            "SELECT author, kind, item_key, data FROM events WHERE kind IN ('reassigned', 'claim_broken') ORDER BY seq"
        )
        assert [(a, k, i) for a, k, i, _d in audit] == [
            ("pat", "reassigned", items["new"]),
            ("pat", "claim_broken", items["waiting"]),
        ]
        assert audit[0][3] == {"to": "alex", "note": "she asked for Alex"}
        assert audit[1][3] == {"holder": "sam"}

    run(team_pg, body)


def test_an_agent_is_refused_the_supervisors_actions_by_postgresql(team_pg: TeamPg) -> None:
    async def body(t: Team) -> None:
        items = await _a_shift(t)
        await ClaimRepo(t.pools["sam"], t.schema).claim(items["waiting"], "sam", 600)
        alex = SupervisorView(t.pools["alex"], t.schema, "alex", FakeClock(NOW))
        with pytest.raises(TeamRefused):
            await alex.reassign(items["waiting"], "alex")
        with pytest.raises(TeamRefused):
            await alex.release_stale(items["waiting"])
        # Not even by writing the event or deleting the row directly: the grants and row security decide.
        async with t.pools["alex"].connection() as conn:
            with pytest.raises(Exception, match="row-level security"):
                await conn.execute(
                    "INSERT INTO events (uid, author, at, kind, item_key, data) "
                    "VALUES (gen_random_uuid(), 'alex', 0, 'reassigned', %s, '{\"to\": \"alex\"}')",
                    (items["waiting"],),
                )
            cur = await conn.execute("DELETE FROM claims WHERE item_key = %s", (items["waiting"],))
            assert cur.rowcount == 0
        assert await t.rows("SELECT holder FROM claims") == [("sam",)]
        assert await t.rows("SELECT assigned_to FROM items WHERE key = %s", items["waiting"]) == [(None,)]
        assert await t.rows("SELECT count(*) FROM events WHERE kind IN ('reassigned', 'claim_broken')") == [(0,)]
        # An agent may still read the view's figures (the window offers it to supervisors only).
        snap = await alex.snapshot()
        assert snap.waiting == 3

    run(team_pg, body)
