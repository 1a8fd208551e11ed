"""``care-console outbox …``: the replies that wait or failed, outside the window (list, retry, withdraw), and what
``doctor``, ``accounts list`` and ``sync --once`` say about them."""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from console.cli.common import data_dir_of
from console.ports import Clock, SystemClock
from console.replies.outbox import Outbox, OutboxError, SendOutcome
from console.wording import count
from storage.accounts import AccountRepo
from storage.db import DB_FILENAME, close_database, open_database
from storage.errors import StorageError
from storage.lock import InstanceLock
from storage.mentions import MentionRepo
from storage.replies import ReplyRepo
from storage.rows import ReplyRow, ReplyState

__all__ = [
    "AccountOutbox",
    "account_outbox",
    "add_parser",
    "describe_reply",
    "run",
    "run_outbox_command",
    "sent_summary",
]

_PREVIEW = 60


@dataclass(frozen=True, slots=True)
class AccountOutbox:
    """An account's replies that have not left: how many wait, the first one held up by an error, how many failed."""

    waiting: int
    #: The first waiting reply that an error holds up (rate limit, offline, sign-in), or None.
    blocked: ReplyRow | None
    failed: int

    @property
    def clear(self) -> bool:
        """Nothing is held up and nothing failed (replies merely queued for the next pass are fine)."""
        return self.blocked is None and self.failed == 0

    def sentence(self, now: float) -> str:
        """ "2 replies waiting (rate limited; next try in 4 min at 14:05:12) · 1 reply failed"; "" when none."""
        parts = []
        if self.waiting:
            why = f" ({_waiting_reason(self.blocked, now)})" if self.blocked is not None else ""
            parts.append(f"{count(self.waiting, 'reply')} waiting{why}")
        if self.failed:
            parts.append(f"{count(self.failed, 'reply')} failed")
        return " · ".join(parts)


def account_outbox(replies: ReplyRepo, account_id: int) -> AccountOutbox:
    """What waits and what failed for one account.

    Args:
        replies: The outbox table.
        account_id: The account.

    Returns:
        The counts and the first held-up reply.
    """
    pending = replies.pending(account_id)
    blocked = next((row for row in pending if row.error or row.hold_reason), None)
    return AccountOutbox(len(pending), blocked, len(replies.failed(account_id)))


def describe_reply(row: ReplyRow, now: float) -> str:
    """A reply's state in words: "queued", "sending", "waiting: …; next try in 3 min at 14:05:12", "held: …",
    "failed: …"."""
    if row.state is ReplyState.FAILED:
        return f"failed: {row.error}"
    if row.state is ReplyState.SENDING:
        return "sending (interrupted: checked against the thread before it is sent again)"
    if row.hold_reason:
        return f"held until you confirm it: {row.hold_reason}"
    if row.error:
        return f"waiting: {_waiting_reason(row, now)}"
    return "queued: leaves with the next sync"


def _waiting_reason(row: ReplyRow, now: float) -> str:
    if row.hold_reason:
        return f"held: {row.hold_reason}"
    when = row.next_attempt_at
    if when is None or when <= now:
        return f"{row.error}; tried again with the next sync"
    return f"{row.error}; next try {_in(when, now)}"


def _in(when: float, now: float) -> str:
    seconds = max(0, math.ceil(when - now))
    span = f"{seconds} s" if seconds < 120 else f"{math.ceil(seconds / 60)} min"
    return f"in {span} at {time.strftime('%H:%M:%S', time.localtime(when))}"


def sent_summary(outcomes: Mapping[int, SendOutcome], reply: Callable[[int], ReplyRow | None], now: float) -> list[str]:
    """What one pass of the outbox did, for ``sync --once``: one line, plus one per reply that did not leave.

    Args:
        outcomes: :meth:`Outbox.drain`'s answer.
        reply: Reads a reply by id (for the reasons), e.g. :meth:`Outbox.reply`.
        now: The current epoch time.

    Returns:
        Lines to print; empty when nothing was due.
    """
    if not outcomes:
        return []
    tally = Counter(outcomes.values())
    sent = tally[SendOutcome.SENT] + tally[SendOutcome.RECONCILED]
    words = [f"{count(sent, 'reply')} sent"]
    for outcome in (SendOutcome.WAITING, SendOutcome.HELD, SendOutcome.FAILED):
        if tally[outcome]:
            words.append(f"{tally[outcome]:,} {outcome.value}")
    lines = ["outbox: " + ", ".join(words)]
    for reply_id, outcome in outcomes.items():
        row = reply(reply_id)
        if row is not None and outcome in (SendOutcome.WAITING, SendOutcome.HELD, SendOutcome.FAILED):
            lines.append(f"  reply {reply_id}: {describe_reply(row, now)}")
    return lines


# ---------------------------------------------------------------------------------------------------- command
def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare the ``outbox`` subcommand and its actions (``list`` when none is given)."""
    outbox = sub.add_parser("outbox", help="list the replies that wait or failed; send one again or withdraw it")
    actions = outbox.add_subparsers(dest="outbox_command")
    actions.add_parser("list", help="replies not sent yet and replies that failed, with why (the default)")
    retry = actions.add_parser("retry", help="send failed or waiting replies again with the next sync")
    retry.add_argument("reply_ids", type=int, nargs="+", metavar="REPLY_ID")
    withdraw = actions.add_parser("withdraw", help="take back replies that have not started sending")
    withdraw.add_argument("reply_ids", type=int, nargs="+", metavar="REPLY_ID")


def run(args: argparse.Namespace) -> int:
    """Run one ``outbox`` action on ``--data-dir`` (or the platform data folder), printing to standard output."""
    return run_outbox_command(args, data_dir=data_dir_of(args), clock=SystemClock(), out=sys.stdout, err=sys.stderr)


def run_outbox_command(args: argparse.Namespace, *, data_dir: Path, clock: Clock, out: TextIO, err: TextIO) -> int:
    """Run one ``outbox`` action against the data folder (takes the instance lock: not while the app runs).

    Returns:
        The exit code: 0 done, 1 an action was refused (message on ``err``).
    """
    lock = InstanceLock(data_dir)
    lock.acquire()
    try:
        db = open_database(data_dir / DB_FILENAME)
        try:
            replies, mentions, accounts = ReplyRepo(db), MentionRepo(db), AccountRepo(db)
            outbox = Outbox(replies, mentions, accounts, {}, clock, actor=lambda: "command line")
            command = args.outbox_command or "list"
            if command == "list":
                _list(replies, mentions, accounts, clock.now(), out)
                return 0
            refused = 0
            for reply_id in args.reply_ids:
                try:
                    message = (
                        _retry(outbox, replies, reply_id, clock) if command == "retry" else _withdraw(outbox, reply_id)
                    )
                except (OutboxError, StorageError) as exc:
                    refused += 1
                    print(f"reply {reply_id}: {exc}", file=err)
                else:
                    print(f"reply {reply_id}: {message}", file=out)
            return 1 if refused else 0
        finally:
            close_database(db)
    finally:
        lock.release()


def _list(replies: ReplyRepo, mentions: MentionRepo, accounts: AccountRepo, now: float, out: TextIO) -> None:
    rows: Sequence[ReplyRow] = [*replies.pending(), *reversed(replies.failed())]
    if not rows:
        print("the outbox is empty: every reply has left", file=out)
        return
    targets = mentions.rows_by_id([row.target_id or row.mention_id for row in rows])
    handles = {account.id: account.handle for account in accounts.list()}
    for row in rows:
        target = targets.get(row.target_id or row.mention_id)
        account_id = replies.account_of(row.id)
        customer = f"@{target.author_handle}" if target is not None else "?"
        text = " ".join(row.text.split())
        preview = text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"
        print(
            f"{row.id}\t@{handles.get(account_id, '?')} to {customer}\t{describe_reply(row, now)}\t“{preview}”",
            file=out,
        )


def _retry(outbox: Outbox, replies: ReplyRepo, reply_id: int, clock: Clock) -> str:
    row = replies.get(reply_id)
    if row is None:
        raise OutboxError("there is no such reply")
    if row.state is ReplyState.FAILED:
        outbox.retry(reply_id)
        return "queued again; it leaves with the next sync (care-console sync --once, or the app)"
    if row.state is ReplyState.QUEUED:
        replies.release(reply_id, now=int(clock.now()))
        return "due now; it leaves with the next sync (care-console sync --once, or the app)"
    raise OutboxError(f"it is {row.state.value}, not waiting or failed")


def _withdraw(outbox: Outbox, reply_id: int) -> str:
    outbox.withdraw(reply_id)
    return "withdrawn; it will not be sent"
