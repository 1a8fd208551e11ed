"""Roles the server enforces (issue #23 item 4): members log in as their own PostgreSQL roles and try what they
must not do. The machine's pg_hba trusts 127.0.0.1, so the password is not checked here, but the role is."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from storage.errors import StorageError, TeamRefused
from storage.team.claims import ClaimRepo, SendOutcome
from storage.team.connect import TeamPool, converted
from storage.team.events import TeamEventRepo
from storage.team.leases import LeaseRepo
from storage.team.members import Invited, MemberRepo, role_slug
from tests.storage.team.conftest import event, item_row, member_pool, mention, owner_pool, seed
from tests.team_pg import TeamPg

ACC = "x:https://api.x.com:brand"
K1 = f"{ACC}#1"
K2 = f"{ACC}#2"


async def refused(work: Callable[[], Awaitable[object]]) -> str:
    try:
        await work()
    except TeamRefused as exc:
        return str(exc)
    raise AssertionError("the server allowed it")


async def _team(pg: TeamPg, owner: TeamPool) -> tuple[Invited, Invited, Invited]:
    members = MemberRepo(owner, pg.schema)
    sam = await members.invite("Sam Rivera", "agent")
    kim = await members.invite("Kim", "agent")
    boss = await members.invite("Alex (lead)", "supervisor")
    await seed(owner, pg.schema, [mention(ACC, "1", 100), mention(ACC, "2", 100), mention(ACC, "3", 100)])
    return sam, kim, boss


def test_invite_makes_prefixed_login_roles(team_pg: TeamPg, arun: Any) -> None:
    async def go() -> tuple[tuple[Invited, Invited, Invited], list[Any], Invited]:
        async with owner_pool(team_pg) as owner:
            invited = await _team(team_pg, owner)
            repo = MemberRepo(owner, team_pg.schema)
            again = await repo.invite("agent", "agent")  # a name that collides with the group role's
            with pytest.raises(StorageError, match="already has a member"):
                await repo.invite("Kim", "supervisor")
            return invited, await repo.list(), again

    (sam, kim, boss), listed, again = arun(go())
    prefix = team_pg.role_prefix
    assert (sam.pg_role, kim.pg_role, boss.pg_role) == (prefix + "sam_rivera", prefix + "kim", prefix + "alex_lead")
    assert again.pg_role == prefix + "agent_2"
    assert len(sam.password) >= 24 and sam.password != kim.password
    roles = {m.name: m.role for m in listed}
    assert roles == {
        "postgres": "owner",
        "Sam Rivera": "agent",
        "Kim": "agent",
        "Alex (lead)": "supervisor",
        "agent": "agent",
    }
    assert role_slug("Zoë  O'Brien!") == "zoe_o_brien"
    with team_pg.connect() as conn:
        stored = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (sam.pg_role,)).fetchone()
    assert stored is not None and str(stored[0]).startswith("SCRAM-SHA-256$") and sam.password not in str(stored[0])


def test_agent_is_refused_what_it_may_not_do(team_pg: TeamPg, arun: Any) -> None:
    async def go() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with owner_pool(team_pg) as owner:
            sam, kim, _boss = await _team(team_pg, owner)
            async with (
                member_pool(team_pg, sam.pg_role, sam.password) as pool,
                member_pool(team_pg, kim.pg_role, kim.password) as kim_pool,
            ):
                members = MemberRepo(pool, team_pg.schema)
                out["who"] = (await members.member_of_current_user(), await members.role_of_current_user())
                out["joined"] = await members.register_self("Sam Rivera", "agent", uuid.uuid4())
                events = TeamEventRepo(pool, team_pg.schema)
                # allowed: own events, own claims, leases, own heartbeat
                out["own"] = await events.append([event("note_added", K1, author="Sam Rivera", text="hi")])
                claims = ClaimRepo(pool, team_pg.schema)
                kim_claims = ClaimRepo(kim_pool, team_pg.schema)
                out["claim"] = await claims.claim(K1, "Sam Rivera", 60)
                out["kim_claim"] = await kim_claims.claim(K2, "Kim", 60)
                out["lease"] = await LeaseRepo(pool, team_pg.schema).acquire_or_renew(ACC, "Sam Rivera", 30)
                out["heartbeat"] = await members.heartbeat("Sam Rivera")
                out["heartbeat_other"] = await members.heartbeat("Kim")
                # refused
                out["as_other"] = await refused(
                    lambda: events.append([event("note_added", K1, author="Kim", text="not me")])
                )
                out["reassign"] = await refused(lambda: claims.reassign(K1, "Sam Rivera", "Sam Rivera", "mine now"))
                out["break"] = await refused(lambda: claims.break_claim(K2, "Sam Rivera"))
                out["claim_as_other"] = await refused(lambda: claims.claim(K2, "Kim", 60))
                out["take_as_other"] = await refused(lambda: claims.take_next("Kim", 60))
                out["send_as_other"] = await refused(
                    lambda: claims.record_send(K1, "r1", "Kim", text="x", purpose="reply")
                )
                out["raw_sending"] = await refused(
                    lambda: events.append([event("reply_sending", K1, author="Sam Rivera", reply_key="r9")])
                )
                out["invite"] = await refused(lambda: members.invite("Eve", "supervisor"))
                async with pool.connection() as conn:
                    for name, statement in {
                        "update_own": "UPDATE events SET data = '{}' WHERE author = 'Sam Rivera'",
                        "delete_own": "DELETE FROM events WHERE author = 'Sam Rivera'",
                        "delete_others": "DELETE FROM events WHERE author <> 'Sam Rivera'",
                        "truncate": "TRUNCATE events",
                        "items": "UPDATE items SET answered = true",
                        "member_role": "UPDATE members SET role = 'supervisor' WHERE name = 'Sam Rivera'",
                        "claim_for_other": "INSERT INTO claims (item_key, holder, expires_at)"
                        f" VALUES ('{ACC}#3', 'Kim', now() + interval '1 minute')",
                        "lease_for_other": "INSERT INTO leases (account_key, holder, expires_at)"
                        " VALUES ('other', 'Kim', now() + interval '1 minute')",
                    }.items():
                        out[name] = await refused(lambda s=statement: _raw(conn, s))  # type: ignore[misc]
                    # row-level security hides other members' claims from writes: nothing is deleted
                    cur = await conn.execute("DELETE FROM claims WHERE holder = 'Kim'")
                    out["delete_kims_claim"] = cur.rowcount
                    cur = await conn.execute("UPDATE members SET last_seen_at = now() WHERE name = 'Kim'")
                    out["touch_kim"] = cur.rowcount
                # and a send over Kim's claim is refused by the server's check
                out["send_over_claim"] = await claims.record_send(K2, "r2", "Sam Rivera", text="x", purpose="reply")
            out["kim_claim_after"] = [c.holder for c in await ClaimRepo(owner, team_pg.schema).active()]
        return out

    out = arun(go())
    assert out["who"] == ("Sam Rivera", "agent")
    assert out["joined"].member_uuid is not None and out["joined"].online
    assert out["own"] == 1 and out["claim"].holder == "Sam Rivera" and out["kim_claim"].holder == "Kim"
    assert out["lease"] is True and out["heartbeat"] is True and out["heartbeat_other"] is False
    for refusal in (
        "as_other",
        "reassign",
        "break",
        "claim_as_other",
        "take_as_other",
        "send_as_other",
        "raw_sending",
        "invite",
        "update_own",
        "delete_own",
        "delete_others",
        "truncate",
        "items",
        "member_role",
        "claim_for_other",
        "lease_for_other",
    ):
        assert out[refusal], refusal
    assert out["delete_kims_claim"] == 0 and out["touch_kim"] == 0
    assert out["send_over_claim"].outcome is SendOutcome.CLAIMED and out["send_over_claim"].by == "Kim"
    assert sorted(out["kim_claim_after"]) == ["Kim", "Sam Rivera"]


async def _raw(conn: Any, statement: str) -> None:
    async with converted("raw statement"):
        await conn.execute(statement)


def test_supervisor_breaks_claims_and_reassigns(team_pg: TeamPg, arun: Any) -> None:
    async def go() -> tuple[str | None, list[str], dict[str, Any] | None, list[str], str]:
        async with owner_pool(team_pg) as owner:
            sam, _kim, boss = await _team(team_pg, owner)
            async with member_pool(team_pg, sam.pg_role, sam.password) as sam_pool:
                await ClaimRepo(sam_pool, team_pg.schema).claim(K1, "Sam Rivera", 600)
            async with member_pool(team_pg, boss.pg_role, boss.password) as pool:
                claims = ClaimRepo(pool, team_pg.schema)
                broken = await claims.break_claim(K1, "Alex (lead)")
                await claims.reassign(K1, "Kim", "Alex (lead)", "Kim knows this customer")
                active = [c.holder for c in await claims.active()]
                history = [e.kind for e in await TeamEventRepo(pool, team_pg.schema).for_item(K1)]
                still_append_only = await refused(lambda: _raw_pool(pool, "DELETE FROM events"))
            return broken, active, await item_row(owner, K1), history, still_append_only

    broken, active, row, history, append_only = arun(go())
    assert broken == "Sam Rivera" and active == []
    assert row is not None and row["assigned_to"] == "Kim"
    assert history == ["mention", "claimed", "claim_broken", "reassigned"]
    assert append_only


async def _raw_pool(pool: TeamPool, statement: str) -> None:
    async with pool.connection() as conn:
        await _raw(conn, statement)


def test_remove_member_drops_its_login(team_pg: TeamPg, arun: Any) -> None:
    async def go() -> tuple[bool, bool, list[str]]:
        async with owner_pool(team_pg) as owner:
            await _team(team_pg, owner)
            repo = MemberRepo(owner, team_pg.schema)
            removed = await repo.remove("Sam Rivera")
            missing = await repo.remove("Nobody")
            return removed, missing, [m.name for m in await repo.list()]

    removed, missing, names = arun(go())
    assert (removed, missing) == (True, False)
    assert "Sam Rivera" not in names
    with team_pg.connect() as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname = %s", (team_pg.role_prefix + "sam_rivera",)
        ).fetchone() == (0,)


def test_owner_renames_itself_at_init(team_pg: TeamPg, arun: Any) -> None:
    async def go() -> tuple[str, str, str | None]:
        async with owner_pool(team_pg) as owner:
            repo = MemberRepo(owner, team_pg.schema)
            row = await repo.register_self("Dana", "owner", uuid.uuid4())
            return row.name, row.role, await repo.member_of_current_user()

    assert arun(go()) == ("Dana", "owner", "Dana")


def test_owner_cannot_take_a_members_name(team_pg: TeamPg, arun: Any) -> None:
    async def go() -> str:
        async with owner_pool(team_pg) as owner:
            repo = MemberRepo(owner, team_pg.schema)
            await repo.invite("Kim", "agent")
            try:
                await repo.register_self("Kim", "owner", uuid.uuid4())
            except StorageError as exc:
                return str(exc)
            return ""

    assert "already has a member named Kim" in arun(go())
