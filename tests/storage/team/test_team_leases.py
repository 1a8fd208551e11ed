"""Poller leases on a real PostgreSQL: one holder at a time, renewal, takeover after expiry, release."""

from __future__ import annotations

import asyncio
from typing import Any

from storage.team.leases import LeaseRepo, LeaseRow
from tests.storage.team.conftest import owner_pool
from tests.team_pg import TeamPg

ACC = "mastodon:https://social.example:brand"


def test_lease_takeover_after_expiry(team_pg: TeamPg, arun: Any) -> None:
    async def go() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with owner_pool(team_pg) as pool:
            repo = LeaseRepo(pool, team_pg.schema)
            out["sam"] = await repo.acquire_or_renew(ACC, "sam", 1)
            out["kim_early"] = await repo.acquire_or_renew(ACC, "kim", 30)
            out["sam_renews"] = await repo.acquire_or_renew(ACC, "sam", 1)
            out["holders"] = await repo.holders()
            await asyncio.sleep(1.2)
            out["holders_expired"] = await repo.holders()
            out["kim_late"] = await repo.acquire_or_renew(ACC, "kim", 30)
            out["sam_back"] = await repo.acquire_or_renew(ACC, "sam", 30)
            out["sam_release"] = await repo.release(ACC, "sam")
            out["kim_release"] = await repo.release(ACC, "kim")
            out["sam_free"] = await repo.acquire_or_renew(ACC, "sam", 30)
        return out

    out = arun(go())
    assert (out["sam"], out["kim_early"], out["sam_renews"]) == (True, False, True)
    row: LeaseRow = out["holders"][ACC]
    assert row.holder == "sam" and 0 < row.expires_in <= 1
    assert out["holders_expired"] == {}
    assert (out["kim_late"], out["sam_back"]) == (True, False)
    assert (out["sam_release"], out["kim_release"], out["sam_free"]) == (False, True, True)


def test_concurrent_acquirers_one_wins(team_pg: TeamPg, arun: Any) -> None:
    async def go() -> list[bool]:
        async with owner_pool(team_pg, max_size=8) as pool:
            repo = LeaseRepo(pool, team_pg.schema)
            return list(await asyncio.gather(*(repo.acquire_or_renew(ACC, f"m{i}", 30) for i in range(8))))

    assert sum(arun(go())) == 1
