"""SLA benchmarks: one breach tick and one band-change pass at 100, 100,000 and 1,000,000 mentions.

Run: ``python -m bench.sla`` (writes bench/sla_results.json). Budget (DESIGN.md): one SLA tick independent of the
queue length, at most 2 ms with 1,000,000 mentions.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from bench.generate import NOW, database
from console.sla_engine import SlaEngine
from storage.db import open_database
from storage.deadlines import DeadlineRepo
from storage.mentions import MentionRepo
from storage.settings import SettingsRepo


class _Clock:
    def __init__(self, now: float) -> None:
        self.at = now

    def now(self) -> float:
        return self.at


def _p50_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def measure(n: int, rounds: int = 200) -> dict[str, float | int]:
    db = open_database(database(n))
    try:
        mentions = MentionRepo(db)
        clock = _Clock(NOW)
        engine = SlaEngine(DeadlineRepo(db, mentions), SettingsRepo(db), clock)
        engine.record_breaches(NOW)  # catch up once: the steady state is what a tick costs
        ticks: list[float] = []
        passes: list[float] = []
        for i in range(rounds):
            now = NOW + i + 1
            start = time.perf_counter()
            engine.record_breaches(now)
            engine.next_band_change(now)
            ticks.append(time.perf_counter() - start)
            start = time.perf_counter()
            engine.band_changes(now - 1, now)
            passes.append(time.perf_counter() - start)
        return {"mentions": n, "tick_ms_p50": _p50_ms(ticks), "band_pass_ms_p50": _p50_ms(passes)}
    finally:
        db.conn.close()


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [100, 100_000, 1_000_000]
    results = [measure(n) for n in sizes]
    for r in results:
        print(f"{r['mentions']:>9,} mentions: tick {r['tick_ms_p50']} ms, band-change pass {r['band_pass_ms_p50']} ms")
    Path(__file__).with_name("sla_results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
