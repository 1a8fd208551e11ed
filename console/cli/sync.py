"""``care-console sync --once``: one sync pass without the window, then the replies that are due leave."""

from __future__ import annotations

import argparse
import asyncio
import sys

from console.cli.common import EXIT_OK, open_app_runtime
from console.cli.outbox import sent_summary
from console.model import SyncReport
from console.ports import SystemClock
from console.runtime import SandboxOptions
from console.sandbox.faults import FAULT_HELP
from console.sync.health import backfill_sentence, describe


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sync`` to the command line."""
    sync = sub.add_parser("sync", help="sync accounts without the window")
    sync.add_argument("--once", action="store_true", required=True, help="run one pass and print what was stored")
    sync.add_argument("--faults", default="", help=f"on the embedded sandbox, switch faults on: {FAULT_HELP}")


def run(args: argparse.Namespace) -> int:
    """One pass over every account; prints a line per account. 0 when every account synced, 1 otherwise."""
    clock = SystemClock()
    # One pass: the sandbox's backlog only, no simulated arrivals while it runs.
    from console.sandbox.faults import parse_fault_spec

    try:
        faults = tuple(parse_fault_spec(args.faults))
    except ValueError as exc:
        raise SystemExit(f"--faults: {exc}") from exc
    runtime = open_app_runtime(args, clock, demo=False, sandbox=SandboxOptions(rate_per_minute=0.0, faults=faults))

    def progress(report: SyncReport) -> None:
        # A first sync reads its backlog batch by batch: say how far it has got (issue 20, sync 1).
        if report.ok and report.backfill is not None and not report.backfill.done:
            print(
                f"account {report.account_id}: {report.caught_up} stored so far; {backfill_sentence(report.backfill)}",
                flush=True,
            )

    runtime.poller.subscribe(progress)

    sending: list[str] = []

    async def run_once() -> list[SyncReport]:
        try:
            reports = await runtime.poller.sync_once()
            # then the replies that are due leave (issue 20, sync 8)
            outcomes = await runtime.replies.outbox.drain()
            sending.extend(sent_summary(outcomes, runtime.replies.outbox.reply, clock.now()))
            return reports
        finally:
            await runtime.aclose()

    reports = asyncio.run(run_once())
    failed = 0
    for report in reports:
        if report.ok:
            print(f"account {report.account_id}: {describe(report)}")
        else:
            failed += 1
            print(f"account {report.account_id}: {describe(report)}", file=sys.stderr)
    if not reports:
        print("no account to sync")
    for line in sending:
        print(line)
    return 1 if failed else EXIT_OK
