"""Team reports from PostgreSQL (issue 23): a week of three agents' work, built from events on a real server, equals
a recomputation from the raw events written here; agents and channels cut it; the five formats carry the audit.

The events are written as the schema's owner (as the replicator pushes them), so the items trigger maintains the
queue exactly as in production; nothing is mocked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from console.ports import MemorySecretStore
from console.reports.export.codec import load_summary
from console.reports.export.service import Format, write_summary
from console.reports.summary import EASY_SCORES, ShiftSummary, customer_key
from console.reports.team import build_team_summary
from storage.rows import DeadlineKind
from storage.team.connect import connect_conninfo, open_pool_conninfo
from storage.team.migrations import migrate
from storage.team.reports import PeriodLog, TeamReportRepo
from tests.fakes.clock import FakeClock
from tests.team_pg import TeamPg

T0 = 1_772_409_600  # a Monday, 00:00 UTC
WEEK = 7 * 86400
START, END = T0, T0 + WEEK - 1
AGENTS = ("alex", "sam", "kim")
SUPERVISOR = "pat"
#: What a member's copy writes for the app, not as anyone's work (a survey answer is read by whichever copy polls).
SYNC = ("mention", "reply_seen", "survey_answered")
ACCOUNTS = {
    "mastodon": "mastodon:https://social.example:care",
    "bluesky": "bluesky:https://bsky.example:care.example",
}


@dataclass
class Log:
    """The raw events, as written to the server (and kept here for the recomputation)."""

    events: list[dict[str, Any]] = field(default_factory=list)

    def add(self, author: str, at: int, event_kind: str, item_key: str | None, **data: Any) -> None:
        self.events.append(
            {
                "uid": str(uuid.uuid4()),
                "author": author,
                "at": at,
                "kind": event_kind,
                "item_key": item_key,
                "data": data,
            }
        )


def _week(seed: int = 23) -> Log:
    """Sixty items over the week (and a day either side), three agents, two channels, repeat customers."""
    rng = random.Random(seed)
    log = Log()
    n = 0
    for account in ACCOUNTS.values():
        for _ in range(30):
            n += 1
            ext = f"{n:04d}"
            key = f"{account}#{ext}"
            customer = f"u{rng.randrange(12)}"
            posted = rng.randrange(T0 - 86400, T0 + WEEK + 86400)
            log.add(
                "kim", posted + 5, "mention", key, account_key=account, external_id=ext, thread_key=ext,
                parent_external_id=None, head_external_id=None, author_id=customer, author_handle=customer,
                author_name=customer.upper(), text=f"my order {n} is late", url=f"https://x.example/{ext}",
                posted_at=posted, kind="mention", visibility="public",
            )  # fmt: skip
            agent = rng.choice(AGENTS)
            if rng.random() < 0.15:
                continue  # never answered
            log.add(agent, posted + 30, "claimed", key, holder=agent)
            delay = rng.choice([60, 300, 900, 1700, 2400, 7200])
            reply_key = str(uuid.uuid4())
            log.add(agent, posted + delay - 5, "reply_sending", key, reply_key=reply_key, text="on it", purpose="reply")
            if rng.random() < 0.1:
                log.add(agent, posted + delay - 4, "send_anyway", key, reply_key=reply_key, reason="claimed by sam")
            log.add(
                agent, posted + delay, "reply_sent", key, reply_key=reply_key, external_id=f"r{ext}",
                url=f"https://x.example/r{ext}", text="on it", purpose="reply", posted_at=posted + delay,
            )  # fmt: skip
            log.add(agent, posted + delay + 1, "released", key, holder=agent)
            if rng.random() < 0.3:
                follow = posted + delay + 600
                log.add(
                    "kim", follow + 5, "mention", f"{account}#{ext}f", account_key=account, external_id=f"{ext}f",
                    thread_key=ext, parent_external_id=f"r{ext}", head_external_id=ext, author_id=customer,
                    author_handle=customer, author_name=customer.upper(), text="thanks", url="", posted_at=follow,
                    kind="mention", visibility="public",
                )  # fmt: skip
            if rng.random() < 0.2:
                log.add(SUPERVISOR, posted + delay + 700, "reassigned", key, to="sam", note="sam knows billing")
            if rng.random() < 0.7:
                log.add(agent, posted + delay + 900, "status_changed", key, **{"from": "new", "to": "resolved"})
                if rng.random() < 0.8:
                    log.add(agent, posted + delay + 1000, "survey_sent", key, reply_key=reply_key, customer=customer)
                    if rng.random() < 0.75:
                        log.add(
                            rng.choice(AGENTS), posted + delay + 4000, "survey_answered", key, reply_key=reply_key,
                            score=rng.randint(1, 7), comment="", customer=customer,
                        )  # fmt: skip
    log.add("alex", T0 + 3 * 86400, "shift_started", None, shift_uid="s1", agent="alex", notes="")
    log.add(
        "alex", T0 + 3 * 86400 + 8 * 3600, "handed_over", None, shift_uid="s1", to="sam", note="two to chase",
        items=[f"{ACCOUNTS['mastodon']}#0001"], follow_ups=[],
    )  # fmt: skip
    log.events.sort(key=lambda e: e["at"])
    return log


async def _setup(pg: TeamPg, log: Log) -> None:
    conn = await connect_conninfo(pg.conninfo, pg.schema)
    try:
        await migrate(conn, pg.schema)
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO events (uid, author, at, kind, item_key, data) VALUES (%s, %s, %s, %s, %s, %s::jsonb)",
                [(e["uid"], e["author"], e["at"], e["kind"], e["item_key"], json.dumps(e["data"])) for e in log.events],
            )
    finally:
        await conn.close()


async def _period(pg: TeamPg, channels: list[str] | None = None) -> PeriodLog:
    pool = await open_pool_conninfo(pg.conninfo, pg.schema)
    try:
        return await TeamReportRepo(pool).period(START, END, channels=channels)
    finally:
        await pool.close()


@pytest.fixture
def week(team_pg: TeamPg) -> tuple[TeamPg, Log]:
    log = _week()
    asyncio.run(_setup(team_pg, log))
    return team_pg, log


# ------------------------------------------------------------------------------------------------ recomputation
@dataclass
class Expected:
    received: int
    replies_sent: int
    easy: int
    neutral: int
    difficult: int
    surveys_sent: int
    customers: dict[str, set[str]]
    first_response: list[int]
    breached: int
    met: int
    audit: list[tuple[int, str, str]]


def _recompute(log: Log, *, agents: set[str] | None = None, channels: set[str] | None = None) -> Expected:
    """The figures from the raw events alone, the way metrics.md defines them."""

    def channel(key: str) -> str:
        return key.split(":", 1)[0]

    events = [e for e in log.events if e["item_key"] is None or channels is None or channel(e["item_key"]) in channels]
    heads = {e["item_key"]: e for e in events if e["kind"] == "mention" and e["data"]["head_external_id"] is None}
    replies = [e for e in events if e["kind"] == "reply_sent"]
    who = agents if agents is not None else set(AGENTS)
    touched = {
        e["item_key"]
        for e in events
        if e["item_key"] in heads and e["author"] in who and e["kind"] not in SYNC and e["at"] <= END
    }
    scope = set(heads) if agents is None else touched
    first: dict[str, int] = {}
    for r in replies:
        if r["item_key"] in scope:
            first[r["item_key"]] = min(first.get(r["item_key"], 2**62), r["data"]["posted_at"])
    mine_replies = [r for r in replies if r["item_key"] in scope and r["author"] in who]
    received = {k for k in scope if START <= heads[k]["data"]["posted_at"] <= END}
    worked = {
        e["item_key"]
        for e in events
        if e["item_key"] in scope
        and START <= e["at"] <= END
        and e["author"] in who
        and e["kind"] not in (*SYNC, "claimed", "released", "reassigned", "send_anyway")
    }
    worked |= {r["item_key"] for r in mine_replies if START <= r["data"]["posted_at"] <= END}
    customers: dict[str, set[str]] = {}
    for k in received | worked:
        customers.setdefault(channel(k), set()).add(heads[k]["data"]["author_id"])
    sent = [e for e in events if e["kind"] == "survey_sent" and e["item_key"] in scope and START <= e["at"] <= END]
    sent = [e for e in sent if e["author"] in who]
    answers = {e["data"]["reply_key"]: e["data"]["score"] for e in events if e["kind"] == "survey_answered"}
    scores = [answers[s["data"]["reply_key"]] for s in sent if s["data"]["reply_key"] in answers]
    easy = sum(1 for s in scores if s in EASY_SCORES)
    difficult = sum(1 for s in scores if s >= 5)
    met = breached = 0
    for k in scope:
        posted = heads[k]["data"]["posted_at"]
        if posted > END:
            continue
        due = posted + 1800
        at = first.get(k)
        if at is not None and at <= due:
            met += START <= at <= END
        elif due < END and (due >= START or at is None or at >= START):
            breached += 1
    audit = sorted(
        (e["at"], e["author"], e["kind"])
        for e in events
        if e["kind"] in ("claimed", "released", "claim_broken", "reassigned", "handed_over", "send_anyway")
        and START <= e["at"] <= END
        and (e["item_key"] is None or e["item_key"] in scope)
        and (agents is None or e["author"] in agents or e["data"].get("to") in agents)
    )
    return Expected(
        received=len(received),
        replies_sent=sum(1 for r in mine_replies if START <= r["data"]["posted_at"] <= END),
        easy=easy,
        neutral=len(scores) - easy - difficult,
        difficult=difficult,
        surveys_sent=len(sent),
        customers=customers,
        first_response=sorted(at - heads[k]["data"]["posted_at"] for k, at in first.items() if START <= at <= END),
        breached=breached,
        met=met,
        audit=audit,
    )


def _check(summary: ShiftSummary, expected: Expected) -> None:
    assert summary.counts.received == expected.received
    assert summary.counts.replies_sent == expected.replies_sent
    ne = summary.net_easy
    assert (ne.easy, ne.neutral, ne.difficult) == (expected.easy, expected.neutral, expected.difficult)
    assert ne.sent == expected.surveys_sent
    n = expected.easy + expected.neutral + expected.difficult
    # Pooled from the counts, never an average of per-agent scores.
    assert ne.score == pytest.approx(100.0 * (expected.easy - expected.difficult) / n)
    got = {c.channel: c for c in summary.channels}
    assert set(got) == set(expected.customers)
    for name, ids in expected.customers.items():
        assert got[name].unique_customers == len(ids)
        assert sorted(got[name].customer_keys) == sorted(customer_key(name, i, i) for i in ids)
    assert summary.first_response.samples_s == expected.first_response
    first = next(k for k in summary.sla if k.kind == DeadlineKind.FIRST_RESPONSE.value)
    assert (first.met, first.breached) == (expected.met, expected.breached)
    assert sorted((a.at, a.actor, a.kind) for a in summary.audit) == expected.audit


def test_a_week_of_three_agents_equals_the_recomputation_from_the_events(week: tuple[TeamPg, Log]) -> None:
    pg, log = week
    summary = build_team_summary(asyncio.run(_period(pg)), FakeClock(END + 3600))
    expected = _recompute(log)
    assert expected.received > 30 and expected.surveys_sent > 5 and expected.breached > 0  # the data has substance
    _check(summary, expected)
    assert summary.shift.started_at == START and summary.shift.ended_at == END
    # Unique customers are counted once across agents: fewer customers than items.
    assert sum(c.unique_customers for c in summary.channels) < sum(c.items for c in summary.channels)
    words = {a.text for a in summary.audit}
    assert "Reassigned to sam · sam knows billing" in words
    assert "Handed over to sam · two to chase" in words
    assert "Sent anyway over sam's claim (needs review)" in words


def test_agents_and_channels_cut_the_report(week: tuple[TeamPg, Log]) -> None:
    pg, log = week
    alex = build_team_summary(asyncio.run(_period(pg)), FakeClock(END), agents=["alex"])
    _check(alex, _recompute(log, agents={"alex"}))
    assert alex.shift.agent == "alex"

    bluesky = build_team_summary(asyncio.run(_period(pg, ["bluesky"])), FakeClock(END), channels=["bluesky"])
    _check(bluesky, _recompute(log, channels={"bluesky"}))
    assert {c.channel for c in bluesky.channels} == {"bluesky"}
    assert bluesky.shift.agent == "Team · bluesky"


def test_the_five_formats_carry_the_team_summary_and_its_audit(week: tuple[TeamPg, Log], tmp_path: Path) -> None:
    pg, _log = week
    summary = build_team_summary(asyncio.run(_period(pg)), FakeClock(END))
    paths = {fmt: write_summary(summary, fmt, tmp_path / f"week.{fmt.value}") for fmt in Format}
    back = load_summary(paths[Format.JSON])
    assert back.audit == summary.audit and back.counts == summary.counts
    html = paths[Format.HTML].read_text(encoding="utf-8")
    assert "Reassigned to sam" in html and "Audit" in html
    assert paths[Format.PDF].read_bytes().startswith(b"%PDF")
    csv_lines = paths[Format.CSV].read_text(encoding="utf-8-sig").splitlines()
    assert len(csv_lines) == 1 + len(summary.items)
    book = load_workbook(paths[Format.XLSX], read_only=True)
    try:
        rows = list(book["Audit"].iter_rows(values_only=True))
    finally:
        book.close()
    assert len(rows) == 1 + len(summary.audit)
    assert any(r[3] == "Handed over to sam · two to chase" for r in rows[1:])


def test_an_empty_period_is_an_empty_report(team_pg: TeamPg) -> None:
    asyncio.run(_setup(team_pg, Log()))
    summary = build_team_summary(asyncio.run(_period(team_pg)), FakeClock(END))
    assert summary.counts.received == 0 and summary.net_easy.score is None and summary.audit == []


# ------------------------------------------------------------------------------------------------ the command line
def _joined_copy(pg: TeamPg, data_dir: Path) -> None:
    """A data folder whose copy has joined the team (the superuser login of the test server, no password)."""
    from console.team.config import TeamConfig, save_config
    from storage.db import DB_FILENAME, close_database, open_database
    from storage.settings import SettingsRepo
    from storage.team.connect import TeamDsn

    db = open_database(data_dir / DB_FILENAME)
    try:
        dsn = TeamDsn.parse(f"{pg.conninfo} schema={pg.schema}").display()
        save_config(SettingsRepo(db), TeamConfig(dsn=dsn, member="pat", member_uuid="", role="supervisor"))
    finally:
        close_database(db)


def _report(data_dir: Path, *argv: str, secrets: MemorySecretStore | None = None) -> tuple[int, str, str]:
    import io

    from console.cli.report import add_parser, run_report

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = run_report(
        args, data_dir=data_dir, secrets=secrets or MemorySecretStore(), clock=FakeClock(END), out=out, err=err
    )
    return code, out.getvalue(), err.getvalue()


def test_care_console_report_team_writes_the_period_from_postgresql(week: tuple[TeamPg, Log], tmp_path: Path) -> None:
    pg, log = week
    _joined_copy(pg, tmp_path)
    target = tmp_path / "alex.json"
    frm = datetime.fromtimestamp(START, UTC).isoformat()
    to = datetime.fromtimestamp(END, UTC).isoformat()
    code, out, err = _report(tmp_path, "--team", "--from", frm, "--to", to, "--agents", "alex", "-o", str(target))
    assert (code, err) == (0, "") and str(target) in out
    _check(load_summary(target), _recompute(log, agents={"alex"}))

    code, _out, err = _report(tmp_path, "--from", frm, "--to", to, "-o", str(target))
    assert code == 2 and "--team" in err
    code, _out, err = _report(tmp_path, "--team", "--from", "last week", "--to", to, "-o", str(target))
    assert code == 2 and "--from and --to" in err
    code, _out, err = _report(tmp_path, "--team", "--from", to, "--to", frm, "-o", str(target))
    assert code == 2 and "before" in err


def test_an_agents_login_is_told_reports_are_for_supervisors(week: tuple[TeamPg, Log], tmp_path: Path) -> None:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from console.team.config import TeamConfig, save_config, store_password
    from storage.db import DB_FILENAME, close_database, open_database
    from storage.settings import SettingsRepo
    from storage.team.connect import TeamDsn
    from storage.team.members import MemberRepo

    pg, _log = week

    async def invite() -> tuple[str, str]:
        conn = await connect_conninfo(pg.conninfo, pg.schema)
        try:
            return tuple(await MemberRepo(conn, pg.schema).invite("alex", "agent"))  # type: ignore[return-value]
        finally:
            await conn.close()

    role, password = asyncio.run(invite())
    params = conninfo_to_dict(pg.conninfo)
    params["user"] = role
    dsn = TeamDsn.parse(f"{make_conninfo('', **params)} schema={pg.schema}")
    secrets = MemorySecretStore()
    store_password(secrets, dsn, password)
    db = open_database(tmp_path / DB_FILENAME)
    try:
        save_config(SettingsRepo(db), TeamConfig(dsn=dsn.display(), member="alex", member_uuid="", role="agent"))
    finally:
        close_database(db)
    code, _out, err = _report(
        tmp_path, "--team", "--from", "2026-03-02", "--to", "2026-03-08", "-o", "x.json", secrets=secrets
    )
    assert code == 2 and "for supervisors" in err and password not in err


def test_report_on_a_copy_with_no_team_says_so(tmp_path: Path) -> None:
    from storage.db import DB_FILENAME, close_database, open_database

    close_database(open_database(tmp_path / DB_FILENAME))
    code, _out, err = _report(tmp_path, "--team", "--from", "2026-12-01", "--to", "2026-12-07", "-o", "x.pdf")
    assert code == 2 and "not in a team" in err


def test_days_are_local_and_to_includes_its_whole_day() -> None:
    from console.cli.report import parse_when

    first = parse_when("2026-12-01", end=False)
    last = parse_when("2026-12-07", end=True)
    assert datetime.fromtimestamp(first).timetuple()[:6] == (2026, 12, 1, 0, 0, 0)
    assert datetime.fromtimestamp(last).timetuple()[:6] == (2026, 12, 7, 23, 59, 59)
    assert parse_when("2026-12-01T09:30:00Z", end=False) == int(datetime(2026, 12, 1, 9, 30, tzinfo=UTC).timestamp())
