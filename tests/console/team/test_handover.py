"""The team hand-over (issue 23 item 1) on a real PostgreSQL: one member's shift handed to another, nothing lost.

Alex and Sam are agents, each logged in as their own role (row security applies); Pat is a supervisor. Alex
holds claims, a reassigned item, a follow-up commitment and notes; the hand-over gives all of it to Sam (or the
pool) in one call, and Sam finds it marked "handed over by alex · note" at the start of the next shift, with what
breached meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from console.team.handover import HandoverService
from storage.errors import TeamRefused
from storage.team.claims import ClaimRepo
from storage.team.supervisor import HandoverRepo
from tests.console.team.shift_support import Team, team
from tests.fakes.clock import FakeClock
from tests.team_pg import TeamPg

T0 = 1_767_225_600
ROLES = {"alex": "agent", "sam": "agent", "pat": "supervisor"}


def run(pg: TeamPg, body: Callable[[Team], Awaitable[None]]) -> None:
    async def main() -> None:
        async with team(pg, ROLES) as t:
            await body(t)

    asyncio.run(main())


async def _alex_holds_a_shift(t: Team) -> dict[str, str]:
    """Four items: two claimed by Alex (one with a note), one reassigned to Alex, one with Alex's follow-up promise."""
    items = {n: await t.mention(n, T0 - 4000 + int(n)) for n in ("1", "2", "3", "4")}
    await t.mention("5", T0 - 100)  # somebody else's business: not Alex's
    alex = ClaimRepo(t.pools["alex"], t.schema)
    assert (await alex.claim(items["1"], "alex", 600)) is not None
    assert (await alex.claim(items["2"], "alex", 600)) is not None
    await ClaimRepo(t.pools["pat"], t.schema).reassign(items["3"], "alex", "pat", "alex knows her")
    await t.event("alex", T0 - 500, "note_added", items["1"], {"text": "refund approved, tell her"})
    await t.event("alex", T0 - 400, "follow_up_promised", items["4"], {"due_at": T0 + 7200, "text": "call back"})
    return items


def test_a_shift_is_handed_over_to_a_colleague_with_nothing_lost(team_pg: TeamPg) -> None:
    async def body(t: Team) -> None:
        items = await _alex_holds_a_shift(t)
        clock = FakeClock(T0)
        local_ids = {items["1"]: 11, items["2"]: 12}
        alex = HandoverService(
            t.pools["alex"], "alex", clock, mention_ids=lambda keys: {k: local_ids[k] for k in keys if k in local_ids}
        )

        pending = await alex.pending_for()
        held = {i.item_key: i for i in pending.items}
        assert set(held) == {items["1"], items["2"], items["3"]}
        assert held[items["1"]].claimed and not held[items["3"]].claimed and held[items["3"]].assigned
        assert held[items["1"]].notes == [("alex", "refund approved, tell her")]
        assert [f.item_key for f in pending.follow_ups] == [items["4"]]
        assert pending.mention_ids == {items["1"]: 11, items["2"]: 12}
        assert set(pending.keys) == {items[n] for n in "1234"}

        result = await alex.hand_over(to="sam", note="call Ana back at 3", shift_uid="shift-a", pending=pending)
        assert result.seq is not None and set(result.items) == set(pending.keys)

        # On the server: every item is Sam's, Alex's claims are gone with a release each, the shift has ended.
        assigned = dict(await t.rows("SELECT key, assigned_to FROM items WHERE key = ANY(%s)", list(pending.keys)))
        assert assigned == dict.fromkeys(pending.keys, "sam")
        assert await t.rows("SELECT item_key FROM claims WHERE holder = 'alex'") == []
        released = await t.rows("SELECT item_key FROM events WHERE kind = 'released' AND author = 'alex'")
        assert {r[0] for r in released} == {items["1"], items["2"]}
        assert await t.rows("SELECT count(*) FROM events WHERE kind = 'shift_ended' AND author = 'alex'") == [(1,)]
        assert await t.rows("SELECT on_shift_since FROM members WHERE name = 'alex'") == [(None,)]
        handed = await t.rows("SELECT data FROM events WHERE kind = 'handed_over'")
        assert len(handed) == 1 and handed[0][0]["follow_ups"][0]["item_key"] == items["4"]

        # A retry of the same hand-over (the answer was lost) writes nothing twice.
        again = await alex.hand_over(to="sam", note="call Ana back at 3", shift_uid="shift-a", pending=pending)
        assert again.seq is None
        assert await t.rows("SELECT count(*) FROM events WHERE kind = 'handed_over'") == [(1,)]

        # Sam, on another machine, starts a shift: the items are there, marked, and so is what breached meanwhile.
        clock.advance(300)
        sam = HandoverService(t.pools["sam"], "sam", clock)
        start = await sam.start_shift("shift-s")
        got = {r.item_key: r for r in start.handed_over}
        assert set(got) == set(pending.keys)
        assert {r.label for r in got.values()} == {"handed over by alex · call Ana back at 3"}
        assert all(r.still_open and r.to == "sam" and r.by == "alex" for r in got.values())
        breached = {b.item_key for b in start.breached}
        assert {items[n] for n in "1234"} <= breached  # due 30 min after the message, and nobody answered
        assert all(b.answered_at is None for b in start.breached)
        on_shift = await t.rows("SELECT on_shift_since IS NOT NULL FROM members WHERE name = 'sam'")
        assert on_shift == [(True,)]

        # Sam now holds them: Sam's own end of shift lists them, and hands them back to the pool.
        mine = await sam.pending_for()
        assert {i.item_key for i in mine.items} == set(pending.keys)  # the follow-up's item came with it
        assert all(i.assigned and not i.claimed for i in mine.items)
        back = await sam.hand_over(to=None, note="", shift_uid="shift-s")
        assert back.to is None
        assert await t.rows("SELECT count(*) FROM items WHERE assigned_to IS NOT NULL") == [(0,)]
        received = await HandoverService(t.pools["alex"], "alex", clock).received_handovers(T0)
        assert {r.item_key for r in received} == set(pending.keys)
        assert all(r.to is None and r.label == "handed over by sam" for r in received)

    run(team_pg, body)


def test_a_hand_over_is_refused_to_a_stranger_to_oneself_and_in_someone_elses_name(team_pg: TeamPg) -> None:
    async def body(t: Team) -> None:
        await _alex_holds_a_shift(t)
        alex = HandoverService(t.pools["alex"], "alex", FakeClock(T0))
        with pytest.raises(TeamRefused, match="not a member"):
            await alex.hand_over(to="nobody", shift_uid="x")
        with pytest.raises(ValueError, match="not to yourself"):
            await alex.hand_over(to="alex")
        # Sam's login cannot write Alex's hand-over: the server's row security refuses it.
        with pytest.raises(TeamRefused):
            await HandoverRepo(t.pools["sam"]).hand_over(
                "alex", to="sam", note="", shift_uid="forged", items=[], follow_ups=[], at=T0, end_shift=True
            )
        assert await t.rows("SELECT count(*) FROM events WHERE kind = 'handed_over'") == [(0,)]
        # Nothing changed hands.
        assert await t.rows("SELECT count(*) FROM claims WHERE holder = 'alex'") == [(2,)]

    run(team_pg, body)


@pytest.mark.parametrize(
    ("kind", "data", "words"),
    [
        ("claimed", {"holder": "sam"}, "Claimed to reply · sam"),
        ("released", {"holder": "sam"}, "Claim released · sam"),
        ("claim_broken", {"holder": "sam"}, "Claim of sam released by a supervisor · pat"),
        ("reassigned", {"to": "alex", "note": "she asked"}, "Reassigned to alex · she asked · pat"),
        ("reassigned", {"to": None, "note": ""}, "Reassigned to the pool · pat"),
        ("handed_over", {"to": "alex", "note": "call back", "items": ["k"]}, "Handed over to alex · call back · sam"),
        ("handed_over", {"to": None, "note": "", "items": ["a", "b"]}, "Handed back to the pool · 2 items · sam"),
        ("send_anyway", {"reason": "claimed by alex"}, "Sent anyway over alex's claim (needs review) · sam"),
        ("send_anyway", {"reason": "answered by alex"}, "Sent anyway after alex had answered (needs review) · sam"),
        (
            "send_anyway",
            {"reason": "Sent while alex was replying"},
            "Sent anyway (needs review) · Sent while alex was replying · sam",
        ),
    ],
)
def test_the_items_history_says_each_team_action_in_plain_words(kind: str, data: dict[str, object], words: str) -> None:
    import json

    from console.model import EventRow
    from widgets.conversation import event_text

    actor = "pat" if kind in ("claim_broken", "reassigned") else "sam"
    line = event_text(EventRow(1, T0, actor, 7, kind, json.dumps(data)), T0 + 60)
    assert line.split("   ", 1)[1] == words
