"""Waiting and failed replies outside the window: `outbox` (list, retry, withdraw), `sync --once` sends what is
due, and `doctor` and `accounts list` say when replies wait on a rate limit or failed."""

from __future__ import annotations

import argparse
import io
import json
import sqlite3
from pathlib import Path

import pytest

import main
from console.cli.accounts import run_accounts_command
from console.cli.doctor_checks import check
from console.cli.outbox import run_outbox_command
from console.ports import MemorySecretStore, SystemClock
from console.replies.outbox import Outbox
from console.sla.bands import SlaPolicy
from storage.accounts import AccountRepo
from storage.db import DB_FILENAME, open_database
from storage.mentions import MentionRepo
from storage.replies import ReplyRepo
from storage.rows import MentionKind, NewMention, ReplyState
from tests.fakes.clock import FakeClock

RATE_LIMITED = "mastodon.example is rate limiting this account; retry in 600 s (Too many requests)."


def _seed(data_dir: Path, clock: FakeClock) -> dict[str, int]:
    """One Mastodon account, three customers; a reply waiting on a 429, one failed, one queued."""
    db = open_database(data_dir / DB_FILENAME)
    try:
        account = AccountRepo(db).add(
            kind="mastodon", handle="care", base_url="https://mastodon.example", now=int(clock.now())
        )
        mentions = MentionRepo(db)
        items = [
            NewMention(
                account_id=account.id, external_id=str(100 + n), author_external_id=f"a{n}", author_handle=handle,
                author_name=handle, text=f"@care help {n}", url=f"https://mastodon.example/@{handle}/{100 + n}",
                posted_at=int(clock.now()), kind=MentionKind.PUBLIC, visibility="public", parent_external_id=None,
                raw_json=json.dumps({"id": str(100 + n)}),
            )
            for n, handle in enumerate(["ann", "bob", "cy"])
        ]  # fmt: skip
        mentions.store_batch(items, channel="mastodon", fetched_at=int(clock.now()), plan=SlaPolicy().plan)
        heads = sorted(mentions.queue_ids())
        replies = ReplyRepo(db)
        outbox = Outbox(replies, mentions, AccountRepo(db), {}, clock)
        waiting = outbox.queue(heads[0], "Your parcel left the depot this morning.")
        replies.mark_waiting(waiting, error=RATE_LIMITED, next_attempt_at=int(clock.now()) + 600)
        failed = outbox.queue(heads[1], "The refund is on its way.")
        replies.mark_failed(failed, error="mastodon.example refused POST /api/v1/statuses (422: Text too long).",
                            at=int(clock.now()))  # fmt: skip
        queued = outbox.queue(heads[2], "We are looking into it.")
        return {"account": account.id, "waiting": waiting, "failed": failed, "queued": queued}
    finally:
        db.conn.close()


def _outbox(argv: list[str], data_dir: Path, clock: FakeClock) -> tuple[int, str, str]:
    args: argparse.Namespace = main.build_parser().parse_args(["--data-dir", str(data_dir), "outbox", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = run_outbox_command(args, data_dir=data_dir, clock=clock, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _state(data_dir: Path, reply_id: int) -> tuple[ReplyState, str]:
    db = open_database(data_dir / DB_FILENAME)
    try:
        row = ReplyRepo(db).get(reply_id)
        assert row is not None
        return row.state, row.error
    finally:
        db.conn.close()


def test_outbox_list_shows_waiting_failed_and_queued_replies_with_why(tmp_path: Path, clock: FakeClock) -> None:
    ids = _seed(tmp_path, clock)
    code, out, _ = _outbox([], tmp_path, clock)  # "list" is the default
    assert code == 0
    lines = {int(line.split("\t")[0]): line for line in out.splitlines()}
    assert set(lines) == {ids["waiting"], ids["failed"], ids["queued"]}
    assert "to @ann" in lines[ids["waiting"]] and "rate limiting" in lines[ids["waiting"]]
    assert "next try in 10 min" in lines[ids["waiting"]]
    assert "failed: " in lines[ids["failed"]] and "Text too long" in lines[ids["failed"]]
    assert "queued: leaves with the next sync" in lines[ids["queued"]]


def test_outbox_retry_and_withdraw(tmp_path: Path, clock: FakeClock) -> None:
    ids = _seed(tmp_path, clock)
    code, out, _ = _outbox(["retry", str(ids["failed"]), str(ids["waiting"])], tmp_path, clock)
    assert code == 0 and "queued again" in out and "due now" in out
    assert _state(tmp_path, ids["failed"]) == (ReplyState.QUEUED, "")
    code, out, _ = _outbox(["withdraw", str(ids["queued"])], tmp_path, clock)
    assert code == 0 and "withdrawn" in out
    assert _state(tmp_path, ids["queued"])[0] is ReplyState.FAILED
    code, _, err = _outbox(["list"], tmp_path, clock)
    assert str(ids["queued"]) not in [
        line.split("\t")[0] for line in _outbox(["list"], tmp_path, clock)[1].splitlines()
    ]
    code, _, err = _outbox(["withdraw", "9999"], tmp_path, clock)
    assert code == 1 and "reply 9999" in err
    code, _, err = _outbox(["retry", str(ids["queued"])], tmp_path, clock)  # withdrawn: not sent after all
    assert code == 1 and f"reply {ids['queued']}" in err


def test_doctor_reports_waiting_and_failed_replies(tmp_path: Path, clock: FakeClock) -> None:
    ids = _seed(tmp_path, clock)
    findings = {f.area: f for f in check(tmp_path, keyring_backend="test", qt_version="Qt", now=clock.now())}
    account = findings[f"account {ids['account']}"]
    assert not account.ok and "rate limiting" in account.message and "1 reply failed" in account.message
    assert "care-console outbox" in account.advice
    outbox = findings["outbox"]
    assert not outbox.ok and outbox.message == "2 replies waiting to be sent, 1 reply failed"


def test_accounts_list_does_not_say_ok_while_a_reply_waits_on_a_rate_limit(tmp_path: Path, clock: FakeClock) -> None:
    ids = _seed(tmp_path, clock)
    args = main.build_parser().parse_args(["--data-dir", str(tmp_path), "accounts", "list"])
    out, err = io.StringIO(), io.StringIO()
    code = run_accounts_command(
        args, data_dir=tmp_path, secrets=MemorySecretStore(), clock=clock, stdin=io.StringIO(), out=out, err=err
    )
    assert code == 0
    (line,) = [line for line in out.getvalue().splitlines() if line.startswith(f"{ids['account']}\t")]
    health = line.split("\t")[5]
    assert health != "ok" and "waiting" in health and "rate limiting" in health and "1 reply failed" in health


@pytest.mark.slow
def test_sync_once_sends_the_replies_that_are_due(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["--data-dir", str(tmp_path), "sync", "--once"]) == 0  # the sandbox's backlog
    capsys.readouterr()
    db = open_database(tmp_path / DB_FILENAME)
    try:
        mentions = MentionRepo(db)
        head = sorted(mentions.queue_ids())[0]
        # The command line runs on the system clock: so does the agent who queued this reply.
        reply = Outbox(ReplyRepo(db), mentions, AccountRepo(db), {}, SystemClock()).queue(head, "On it, thanks!")
    finally:
        db.conn.close()
    assert main.main(["--data-dir", str(tmp_path), "sync", "--once"]) == 0
    assert "outbox: 1 reply sent" in capsys.readouterr().out
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    try:
        state, external = conn.execute("SELECT state, external_id FROM replies WHERE id = ?", (reply,)).fetchone()
    finally:
        conn.close()
    assert state == "sent" and external
