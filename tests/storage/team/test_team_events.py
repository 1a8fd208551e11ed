"""The team event log: idempotent append, reading past a cursor, the digest, and the items trigger per kind."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from storage.team.connect import connect_conninfo
from storage.team.events import TeamEvent, TeamEventRepo, digest_of
from tests.storage.team.conftest import event, item_row, mention, owner_pool
from tests.team_pg import TeamPg

ACC = "mastodon:https://social.example:brand"


def test_append_is_idempotent_and_reads_in_order(team_pg: TeamPg, arun: Any) -> None:
    async def go() -> tuple[int, int, list[TeamEvent], list[TeamEvent], int, tuple[int, str]]:
        async with owner_pool(team_pg) as pool:
            repo = TeamEventRepo(pool, team_pg.schema)
            batch = [event("note_added", f"{ACC}#{i}", text=f"n{i}") for i in range(500)]
            first = await repo.append(batch)
            again = await repo.append([*batch[:10], event("note_added", None, text="new")])
            everything = await repo.since(0, limit=1000)
            tail = await repo.since(everything[-3].seq or 0)
            return first, again, everything, tail, await repo.max_seq(), await repo.digest()

    first, again, everything, tail, top, (count, digest) = arun(go())
    assert (first, again) == (500, 1)
    assert len(everything) == 501
    seqs = [e.seq for e in everything]
    assert seqs == sorted(seqs) and len(set(seqs)) == 501
    assert [e.data["text"] for e in everything[:3]] == ["n0", "n1", "n2"]
    assert [e.seq for e in tail] == seqs[-2:]
    assert top == seqs[-1]
    assert (count, digest) == digest_of(e.uid for e in everything)


def test_empty_log(team_pg: TeamPg, arun: Any) -> None:
    async def go() -> tuple[int, int, tuple[int, str], list[TeamEvent]]:
        async with owner_pool(team_pg) as pool:
            repo = TeamEventRepo(pool, team_pg.schema)
            return await repo.append([]), await repo.max_seq(), await repo.digest(), await repo.since(0)

    assert arun(go()) == (0, 0, digest_of([]), [])


def test_digest_matches_python_order() -> None:
    uids = [uuid.UUID(int=n << 64 | 0xF) for n in (3, 1, 2)] + [uuid.uuid4() for _ in range(20)]
    count, digest = digest_of(uids)
    assert count == 23
    assert digest_of(reversed(uids)) == (count, digest)
    assert digest_of(str(u).upper() for u in uids) == (count, digest)


def test_items_trigger_per_kind(team_pg: TeamPg, arun: Any) -> None:
    key = f"{ACC}#100"

    async def go() -> list[dict[str, Any] | None]:
        snapshots: list[dict[str, Any] | None] = []
        async with owner_pool(team_pg) as pool:
            repo = TeamEventRepo(pool, team_pg.schema)

            async def step(*events: TeamEvent) -> None:
                await repo.append(events)
                snapshots.append(await item_row(pool, key))

            await step(mention(ACC, "100", 1_000))
            await step(mention(ACC, "100", 1_000))  # pushed twice by two members: one item
            await step(event("status_changed", key, **{"from": "new", "to": "open"}))
            await step(event("priority_changed", key, **{"from": 2, "to": 1}))
            await step(event("reply_sending", key, author="sam", at=1_100, reply_key="r1", text="hi", purpose="reply"))
            await step(event("reply_sent", key, author="sam", at=1_101, reply_key="r1", posted_at=1_101))
            await step(mention(ACC, "101", 2_000, head="100"))  # the customer writes again
            await step(event("reply_seen", key, author="sam", external_id="x9", posted_at=2_100))
            await step(event("reassigned", key, author="boss", to="kim", note="VIP"))
            await step(event("handed_over", None, author="kim", to=None, items=[key], note="end of shift"))
            await step(mention(ACC, "102", 1_500, head="100"))  # an older follow-up arriving late
        return snapshots

    s = arun(go())
    assert s[0] is not None
    assert (s[0]["posted_at"], s[0]["due_at"], s[0]["status"], s[0]["answered"]) == (1_000, 2_800, "new", False)
    assert s[0]["customer"] == "mastodon:cust1" and s[0]["external_id"] == "100"
    assert s[1] == s[0]
    assert s[2] is not None and s[2]["status"] == "open"
    assert s[3] is not None and s[3]["priority"] == 1
    assert s[4] is not None
    assert (s[4]["last_reply_key"], s[4]["last_reply_by"], s[4]["last_reply_at"], s[4]["answered"]) == (
        "r1",
        "sam",
        1_100,
        False,
    )
    assert s[5] is not None and s[5]["answered"] is True and s[5]["last_reply_at"] == 1_101
    assert s[6] is not None
    assert (s[6]["posted_at"], s[6]["answered"], s[6]["due_at"]) == (2_000, False, 3_800)
    assert s[7] is not None and s[7]["answered"] is True and s[7]["last_reply_key"] == "seen:x9"
    assert s[8] is not None and s[8]["assigned_to"] == "kim"
    assert s[9] is not None and s[9]["assigned_to"] is None
    assert s[10] is not None and (s[10]["posted_at"], s[10]["answered"]) == (2_000, True)


def test_notifications_carry_the_new_seq(team_pg: TeamPg, arun: Any) -> None:
    async def go() -> tuple[list[str], int]:
        async with owner_pool(team_pg) as pool:
            repo = TeamEventRepo(pool, team_pg.schema)
            listener = await connect_conninfo(team_pg.conninfo, team_pg.schema)
            try:
                await listener.execute(f'LISTEN "{team_pg.schema}_events"')
                await repo.append([event("note_added", None, text=str(i)) for i in range(50)])
                payloads = [n.payload async for n in listener.notifies(timeout=1.0, stop_after=1)]
            finally:
                await listener.close()
            return payloads, await repo.max_seq()

    payloads, top = arun(go())
    assert payloads == [str(top)]


def test_a_late_commit_is_never_skipped(team_pg: TeamPg, arun: Any) -> None:
    """A writer holds seq 1 while another commits seq 2: a reader waits for the first instead of skipping it."""

    async def go() -> list[str]:
        async with owner_pool(team_pg, max_size=3) as pool:
            repo = TeamEventRepo(pool, team_pg.schema)
            slow = await connect_conninfo(team_pg.conninfo, team_pg.schema, autocommit=False)
            try:
                await slow.execute(
                    "INSERT INTO events (uid, author, at, kind, data) VALUES (gen_random_uuid(), 'a', 1, 'first', '{}')"
                )
                await repo.append([event("second", None)])
                reader = asyncio.create_task(repo.since(0))
                while True:  # until the reader waits on the events lock (it must not answer with seq 2 alone)
                    async with pool.connection() as conn:
                        cur = await conn.execute(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND wait_event = 'advisory' AND query LIKE '%%team_events_since%%'"
                        )
                        row = await cur.fetchone()
                    if reader.done() or (row is not None and row[0] > 0):
                        break
                    await asyncio.sleep(0.02)
                await slow.commit()
                return [e.kind for e in await reader]
            finally:
                await slow.close()

    assert arun(go()) == ["first", "second"]


def test_a_gapless_read_does_not_wait_for_writers(team_pg: TeamPg, arun: Any) -> None:
    """Events 1 and 2 committed, 3 in flight: a reader gets 1 and 2 at once (nothing after it can come late)."""

    async def go() -> tuple[list[str], list[str]]:
        async with owner_pool(team_pg, max_size=2) as pool:
            repo = TeamEventRepo(pool, team_pg.schema)
            await repo.append([event("one", None), event("two", None)])
            slow = await connect_conninfo(team_pg.conninfo, team_pg.schema, autocommit=False)
            try:
                await slow.execute(
                    "INSERT INTO events (uid, author, at, kind, data) VALUES (gen_random_uuid(), 'a', 1, 'three', '{}')"
                )
                early = [e.kind for e in await repo.since(0)]  # would hang here if it waited for the writer
                await slow.commit()
            finally:
                await slow.close()
            return early, [e.kind for e in await repo.since(2)]

    assert arun(go()) == (["one", "two"], ["three"])


def test_fractional_times_are_rounded_not_refused(team_pg: TeamPg, arun: Any) -> None:
    key = f"{ACC}#7"

    async def go() -> dict[str, Any] | None:
        async with owner_pool(team_pg) as pool:
            m = mention(ACC, "7", 0)
            m.data["posted_at"] = 1_000.4
            await TeamEventRepo(pool, team_pg.schema).append([m, event("priority_changed", key, to=1.0)])
            return await item_row(pool, key)

    row = arun(go())
    assert row is not None and (row["posted_at"], row["priority"]) == (1_000, 1)
