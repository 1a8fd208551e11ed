"""The sandbox demo (``care-console --demo``): the window runs for a bounded time while a scripted agent works the
queue and the sandbox fails once; it prints what happens, then saves a screenshot and the shift's summary."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from console.model import SyncReport
from console.ports import Clock
from console.runtime import Runtime
from console.sandbox.demo_agent import DemoAgent
from console.sla.bands import format_countdown
from console.wording import count

if TYPE_CHECKING:
    from console.sandbox import SandboxServer
    from widgets.main_window import MainWindow


async def run_demo(
    runtime: Runtime, window: MainWindow, clock: Clock, *, seconds: float, screenshot: Path | None
) -> None:
    """Run for ``seconds`` (``--demo-seconds``), printing what happens; then save a screenshot (``--screenshot``)."""
    start = time.monotonic()
    totals = {"stored": 0, "follow_ups": 0, "errors": 0}

    def on_report(report: SyncReport) -> None:
        totals["stored"] += report.stored
        totals["follow_ups"] += len(report.follow_ups)
        totals["errors"] += 0 if report.ok else 1

    runtime.poller.subscribe(on_report)
    if runtime.shifts.current() is None:
        runtime.shifts.start(runtime.shifts.remembered_agent or "Demo agent")
    sandbox = runtime.sandbox
    print(f"demo: sandbox Mastodon server on {sandbox.base_url if sandbox else '-'}; data in {runtime.data_dir}")
    agent = DemoAgent(runtime.queue, runtime.replies.outbox, runtime.triage, runtime.surveys, clock)
    ticks = max(1, round(seconds / 2.0))
    for tick in range(1, ticks + 1):
        await asyncio.sleep(max(0.0, start + tick * seconds / ticks - time.monotonic()))
        if tick == 1 and sandbox is not None:
            demo_faults(sandbox)
        if tick > 1:
            try:
                action = await agent.step()
            except Exception as exc:  # the demo keeps going; the error is shown, not hidden
                action = f"could not act: {exc}"
            if action:
                print(f"demo agent: {action}", flush=True)
                window.refresh_queue()
        ids = runtime.queue.queue_ids()
        nearest = ""
        if ids:
            row = runtime.queue.rows_by_id(ids[:1])[ids[0]]
            if row.due_at is not None:
                nearest = f" · next deadline {format_countdown(row.due_at, clock.now())} (@{row.author_handle})"
        breaches = runtime.events.count("breached")
        print(
            f"[{time.monotonic() - start:5.1f}s] mentions synced {totals['stored']} · queue {len(ids)} open"
            f"{nearest} · breaches {breaches} · sync errors {totals['errors']}",
            flush=True,
        )
    await demo_shift_summary(runtime, screenshot)
    if screenshot:
        path: Path = screenshot
        path.parent.mkdir(parents=True, exist_ok=True)
        pixmap = window.grab()
        if pixmap.save(str(path)):
            print(f"demo: screenshot saved to {path}")
        else:
            print(f"demo: could not save the screenshot to {path}", file=sys.stderr)
    done = agent.counts
    replies = f"{done['replies']} {'reply' if done['replies'] == 1 else 'replies'} written"
    print(
        f"demo: done: {totals['stored']} mentions synced, {replies},"
        f" {done['resolved']} resolved, {count(done['surveys'], 'survey')},"
        f" {count(runtime.events.count('breached'), 'breach')},"
        f" {len(runtime.queue.queue_ids())} open in the queue"
    )


def demo_faults(sandbox: SandboxServer) -> None:
    """Issue 5 in the demo: the sandbox fails once (a 503) and sends one unreadable item; sync carries on."""
    from console.sandbox.faults import Fault, FaultRule

    sandbox.set_faults([FaultRule(Fault.UNAVAILABLE, count=1), FaultRule(Fault.MALFORMED_ITEM, count=1)])
    print("demo: sandbox faults: the next request gets a 503 and one item arrives unreadable", flush=True)


async def demo_shift_summary(runtime: Runtime, screenshot: Path | None) -> None:
    """End the demo's shift and write its summary (JSON and PDF) next to the screenshot (DESIGN "Commands")."""
    from console.reports.export.atomic import ExportError
    from console.reports.export.service import Format

    if runtime.shifts.current() is None:
        return
    shift = runtime.shifts.end("Demo shift: the queue was synced from the sandbox.")
    base = screenshot.with_name(screenshot.stem + "-summary") if screenshot else runtime.data_dir / "shift-summary"
    base.parent.mkdir(parents=True, exist_ok=True)
    for fmt in (Format.JSON, Format.PDF):
        try:
            out = await runtime.exports.export_async(shift.id, fmt, base.with_suffix(f".{fmt.value}"))
        except ExportError as exc:
            print(f"demo: could not write the shift summary: {exc}", file=sys.stderr)
            return
        print(f"demo: shift summary saved to {out}")
