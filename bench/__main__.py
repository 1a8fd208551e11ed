"""`make bench`: measure every DESIGN.md budget, print one table and write bench/results.json.

Usage: python -m bench [--only NAME ...] [--quick]
  (names: ingest, queue, tick, cold_start, sync, backfill, export, queue_filters, team)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from bench import backfill, figures, queue_filters, shift_report, sla, team
from bench.figures import Figure

RESULTS = Path(__file__).with_name("results.json")


def suites(quick: bool) -> dict[str, Callable[[], list[Figure]]]:
    size = 100_000 if quick else 1_000_000
    return {
        "ingest": lambda: [figures.ingest(20_000)],
        "tick": lambda: figures.sla_tick((100, size)) + sla.figures_for_bench((100, size)),
        "cold_start": lambda: [figures.cold_start(size)],
        "sync": lambda: [figures.sync_catch_up(10_000, runs=1 if quick else 3)],
        "backfill": lambda: [backfill.first_sync_backfill(100_000)],
        "queue_filters": lambda: queue_filters.filter_and_search(size),
        "export": lambda: shift_report.figures_for_bench(10_000, runs=1 if quick else 3),
        # Team mode (issue 22): on the machine's PostgreSQL (or CARE_TEST_PG), a throwaway schema per figure.
        "team": lambda: team.figures_for_bench(quick),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", nargs="*", default=None, help="run only these suites")
    parser.add_argument("--quick", action="store_true", help="100k instead of 1M mentions")
    args = parser.parse_args(argv)
    chosen = suites(args.quick)
    names = args.only or list(chosen)
    rows: list[Figure] = []
    started = time.perf_counter()
    for name in names:
        print(f"bench: {name} ...", flush=True)
        rows.extend(chosen[name]())
    report = {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpus": os.cpu_count(),
            "sqlite": sqlite3.sqlite_version,
        },
        "seconds": round(time.perf_counter() - started, 1),
        "figures": [r.row() for r in rows],
    }
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\n{'figure':<84} {'value':>10} {'unit':<11} {'spread':<20} {'budget':<44} pass")
    for r in rows:
        spread = "–".join(str(v) for v in r.spread) if r.spread else ""
        verdict = "-" if r.passed is None else ("PASS" if r.passed else "FAIL")
        print(f"{r.figure:<84} {r.value!s:>10} {r.unit:<11} {spread:<20} {r.budget:<44} {verdict}")
        for key, value in r.extra.items():
            print(f"{'  ' + key:<84} {value!s:>10}")
    print(f"\nwrote {RESULTS.name} ({report['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
