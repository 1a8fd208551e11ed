"""Claims on a real PostgreSQL: expiry on the server's clock, take next under concurrency, and the send race."""

from __future__ import annotations

import asyncio
from typing import Any

from storage.team.claims import ClaimRepo, ClaimRow, SendOutcome, SendVerdict
from storage.team.events import TeamEventRepo
from tests.storage.team.conftest import event, item_row, mention, owner_pool, seed
from tests.team_pg import TeamPg

ACC = "bluesky:https://bsky.social:brand.example"
OTHER = "mastodon:https://social.example:brand"


def key(n: int, account: str = ACC) -> str:
    return f"{account}#{n}"


async def kinds(pool: Any, schema: str, item_key: str) -> list[str]:
    return [e.kind for e in await TeamEventRepo(pool, schema).for_item(item_key) if e.kind != "mention"]


def test_claim_is_ours_or_the_colleagues_and_expires(team_pg: TeamPg, arun: Any) -> None:
    async def go() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with owner_pool(team_pg) as pool:
            await seed(pool, team_pg.schema, [mention(ACC, "1", 100)])
            repo = ClaimRepo(pool, team_pg.schema)
            out["sam"] = await repo.claim(key(1), "sam", 1)
            out["sam_again"] = await repo.claim(key(1), "sam", 1)
            out["kim_blocked"] = await repo.claim(key(1), "kim", 30)
            out["active"] = await repo.active()
            await asyncio.sleep(1.2)  # the server's clock runs the 1 s claim out
            out["active_after"] = await repo.active()
            out["renew_lost"] = await repo.renew(key(1), "kim", 30)
            out["kim_takes"] = await repo.claim(key(1), "kim", 30)
            out["renew_kim"] = await repo.renew(key(1), "kim", 30)
            out["sam_renew"] = await repo.renew(key(1), "sam", 30)
            out["unknown"] = await repo.claim(key(999), "kim", 30)
            out["release_sam"] = await repo.release(key(1), "sam")
            out["release_kim"] = await repo.release(key(1), "kim")
            out["events"] = await kinds(pool, team_pg.schema, key(1))
        return out

    out = arun(go())
    sam: ClaimRow = out["sam"]
    assert sam.holder == "sam" and 0.5 < sam.expires_at - sam.claimed_at < 1.5
    assert out["sam_again"].holder == "sam" and out["sam_again"].claimed_at == sam.claimed_at
    assert out["kim_blocked"].holder == "sam"
    assert [c.holder for c in out["active"]] == ["sam"] and out["active"][0].age_s >= 0
    assert out["active_after"] == []
    assert out["renew_lost"] is False
    assert out["kim_takes"].holder == "kim"
    assert out["renew_kim"] is True and out["sam_renew"] is False
    assert out["unknown"] is None
    assert (out["release_sam"], out["release_kim"]) == (False, True)
    # claimed once by sam (again = renewal, no event), once by kim after expiry, then kim released it
    assert out["events"] == ["claimed", "claimed", "released"]


def test_take_next_most_urgent_first_and_filters(team_pg: TeamPg, arun: Any) -> None:
    async def go() -> list[str | None]:
        async with owner_pool(team_pg) as pool:
            await seed(
                pool,
                team_pg.schema,
                [
                    mention(ACC, "1", 300),
                    mention(ACC, "2", 100),  # most urgent
                    mention(ACC, "3", 200),
                    mention(ACC, "4", 50),  # answered
                    mention(ACC, "5", 60),  # resolved
                    mention(ACC, "6", 70),  # assigned to kim
                    mention(OTHER, "7", 80),  # another account
                    event("reply_sent", key(4), reply_key="r4", posted_at=500),
                    event("status_changed", key(5), to="resolved"),
                    event("reassigned", key(6), to="kim", note=""),
                ],
            )
            repo = ClaimRepo(pool, team_pg.schema)
            taken = [await repo.take_next("sam", 30, account_keys=[ACC]) for _ in range(4)]
            taken.append(await repo.take_next("kim", 30))
            taken.append(await repo.take_next("kim", 30))
            return taken

    assert arun(go()) == [key(2), key(3), key(1), None, key(6), key(7, OTHER)]


def test_take_next_skips_an_item_whose_reply_is_being_sent(team_pg: TeamPg, arun: Any) -> None:
    """A reply recorded (reply_sending) but not yet answered: take next must not hand that item out, or the
    taker's own reply is then refused as 'answered' (the team soak's finding)."""

    async def go() -> tuple[str | None, str | None, str | None, SendVerdict]:
        async with owner_pool(team_pg) as pool:
            await seed(pool, team_pg.schema, [mention(ACC, "1", 300), mention(ACC, "2", 100)])
            repo = ClaimRepo(pool, team_pg.schema)
            assert (await repo.record_send(key(2), "r-kim", "kim", text="hi", purpose="reply")).ok
            first = await repo.take_next("sam", 30)
            second = await repo.take_next("sam", 30)
            # the customer writes again after kim's reply: the item waits for an answer again
            await seed(pool, team_pg.schema, [mention(ACC, "2b", 10**10, head="2")])
            third = await repo.take_next("sam", 30)
            verdict = await repo.record_send(key(2), "r-sam", "sam", text="hello", purpose="reply")
        return first, second, third, verdict

    first, second, third, verdict = arun(go())
    assert (first, second, third) == (key(1), None, key(2))
    assert verdict.ok


def test_take_next_pick_still_walks_the_items_next_index(team_pg: TeamPg, arun: Any) -> None:
    """The pick's WHERE still implies items_next's predicate, so the partial index serves it (take next fast)."""

    async def go() -> str:
        async with owner_pool(team_pg) as pool, pool.connection() as conn:
            await conn.execute("SET enable_seqscan = off")
            cur = await conn.execute(
                f"""EXPLAIN SELECT i.key FROM "{team_pg.schema}".items i
                     WHERE NOT i.answered AND i.status IN ('new', 'open')
                       AND (i.assigned_to IS NULL OR i.assigned_to = 'sam')
                       AND (i.last_reply_key IS NULL OR i.last_reply_at IS NULL OR i.last_reply_at < i.posted_at)
                       AND i.key NOT IN (SELECT c.item_key FROM "{team_pg.schema}".claims c
                                          WHERE c.expires_at > clock_timestamp())
                     ORDER BY i.due_at, i.posted_at LIMIT 1 FOR UPDATE OF i SKIP LOCKED"""
            )
            return "\n".join(str(row[0]) for row in await cur.fetchall())

    plan = arun(go())
    assert "items_next" in plan, plan


def test_concurrent_takers_never_share_an_item(team_pg: TeamPg, arun: Any) -> None:
    takers = 24

    async def go() -> tuple[list[str | None], list[ClaimRow], int]:
        async with owner_pool(team_pg, max_size=8) as pool:
            await seed(pool, team_pg.schema, [mention(ACC, str(n), 1_000 + n) for n in range(30)])
            repo = ClaimRepo(pool, team_pg.schema)
            got = await asyncio.gather(*(repo.take_next(f"agent{i}", 60) for i in range(takers)))
            events = [e for e in await TeamEventRepo(pool, team_pg.schema).since(0, 5000) if e.kind == "claimed"]
            return list(got), await repo.active(), len(events)

    got, active, claimed_events = arun(go())
    assert None not in got
    assert len(set(got)) == takers
    # the most urgent ones, whatever order the takers ran in
    assert set(got) == {key(n) for n in range(takers)}
    assert {c.item_key: c.holder for c in active} == {k: f"agent{i}" for i, k in enumerate(got) if k}
    assert claimed_events == takers


def test_record_send_checks_claims_and_earlier_replies(team_pg: TeamPg, arun: Any) -> None:
    async def go() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with owner_pool(team_pg) as pool:
            await seed(pool, team_pg.schema, [mention(ACC, "1", 100), mention(ACC, "2", 100)])
            repo = ClaimRepo(pool, team_pg.schema)
            out["unknown"] = await repo.record_send(key(9), "r0", "sam", text="x", purpose="reply")
            await repo.claim(key(1), "kim", 30)
            out["claimed"] = await repo.record_send(key(1), "r1", "sam", text="hi", purpose="reply")
            out["kim"] = await repo.record_send(key(1), "r2", "kim", text="hello", purpose="reply")
            out["kim_retry"] = await repo.record_send(key(1), "r2", "kim", text="hello", purpose="reply")
            await repo.release(key(1), "kim")
            out["answered"] = await repo.record_send(key(1), "r3", "sam", text="hi", purpose="reply")
            out["override"] = await repo.record_send(key(1), "r3", "sam", text="hi", purpose="reply", override=True)
            out["row"] = await item_row(pool, key(1))
            out["events"] = await TeamEventRepo(pool, team_pg.schema).for_item(key(1))
            # a follow-up from the customer: a new reply may go again
            await seed(pool, team_pg.schema, [mention(ACC, "1b", 10**10, head="1")])
            out["after_follow_up"] = await repo.record_send(key(1), "r4", "sam", text="again", purpose="reply")
        return out

    out = arun(go())
    assert out["unknown"] == SendVerdict(SendOutcome.UNKNOWN)
    assert out["claimed"] == SendVerdict(SendOutcome.CLAIMED, "kim")
    assert out["kim"].ok and out["kim_retry"].ok
    answered: SendVerdict = out["answered"]
    assert answered.outcome is SendOutcome.ANSWERED and answered.by == "kim" and answered.at is not None
    assert out["override"].ok
    assert out["row"]["last_reply_key"] == "r3" and out["row"]["last_reply_by"] == "sam"
    sending = [e for e in out["events"] if e.kind == "reply_sending"]
    assert [e.data["reply_key"] for e in sending] == ["r2", "r3"]  # the retry wrote nothing new
    anyway = [e for e in out["events"] if e.kind == "send_anyway"]
    assert len(anyway) == 1 and anyway[0].data["reply_key"] == "r3" and "kim" in anyway[0].data["reason"]
    assert out["after_follow_up"].ok


def test_racing_sends_exactly_one_wins(team_pg: TeamPg, arun: Any) -> None:
    racers = 8

    async def go() -> list[SendVerdict]:
        async with owner_pool(team_pg, max_size=racers) as pool:
            await seed(pool, team_pg.schema, [mention(ACC, "1", 100)])
            repo = ClaimRepo(pool, team_pg.schema)
            return list(
                await asyncio.gather(
                    *(
                        repo.record_send(key(1), f"reply-{i}", f"agent{i}", text="hi", purpose="reply")
                        for i in range(racers)
                    )
                )
            )

    verdicts = arun(go())
    assert sum(v.ok for v in verdicts) == 1
    winner = next(i for i, v in enumerate(verdicts) if v.ok)
    assert all(v.outcome is SendOutcome.ANSWERED and v.by == f"agent{winner}" for v in verdicts if not v.ok)


def test_supervisor_actions_are_events(team_pg: TeamPg, arun: Any) -> None:
    async def go() -> tuple[str | None, str | None, list[ClaimRow], dict[str, Any] | None, list[str]]:
        async with owner_pool(team_pg) as pool:
            await seed(pool, team_pg.schema, [mention(ACC, "1", 100)])
            repo = ClaimRepo(pool, team_pg.schema)
            await repo.claim(key(1), "sam", 600)
            broken = await repo.break_claim(key(1), "boss")
            none = await repo.break_claim(key(1), "boss")
            await repo.reassign(key(1), "kim", "boss", "VIP customer")
            return (
                broken,
                none,
                await repo.active(),
                await item_row(pool, key(1)),
                await kinds(pool, team_pg.schema, key(1)),
            )

    broken, none, active, row, events = arun(go())
    assert (broken, none, active) == ("sam", None, [])
    assert row is not None and row["assigned_to"] == "kim"
    assert events == ["claimed", "claim_broken", "reassigned"]
