"""SLA engine benchmarks for `make bench` (suite "tick"): the once-a-second breach check and the band-change pass.

Budget (DESIGN.md): one SLA tick costs the same whatever the queue length, at most 2 ms with 1,000,000 mentions;
the figures at 100 and at 1,000,000 mentions and their ratio show it.
"""

from __future__ import annotations

import statistics
import time

from bench.figures import Figure
from bench.generate import NOW, database
from console.sla.engine import SlaEngine
from storage.db import open_database
from storage.deadlines import DeadlineRepo
from storage.mentions import MentionRepo
from storage.settings import SettingsRepo


class _Clock:
    def __init__(self, now: float) -> None:
        self.at = now

    def now(self) -> float:
        return self.at


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered) * 1000, 3),
        "min": round(ordered[0] * 1000, 3),
        "p95": round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000, 3),
    }


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
        out: dict[str, float | int] = {"mentions": n}
        for name, samples in (("tick", ticks), ("band_pass", passes)):
            out.update({f"{name}_ms_{k}": v for k, v in _ms(samples).items()})
        return out
    finally:
        db.conn.close()


def figures_for_bench(sizes: tuple[int, int] = (100, 1_000_000)) -> list[Figure]:
    """The engine's tick (record breaches + next band change) and band-change pass, small and large queue."""
    small, big = (measure(n) for n in sizes)
    out = []
    for key, what in (
        ("tick_ms_p50", "SLA engine tick (record breaches + next band change)"),
        ("band_pass_ms_p50", "SLA band-change pass (items that changed band in the last second)"),
    ):
        ratio = big[key] / small[key] if small[key] else 1.0
        for r in (small, big):
            last = r is big
            out.append(
                Figure(
                    f"{what}, {r['mentions']:,} mentions (p50)",
                    r[key],
                    "ms",
                    "<= 2 ms at 1M; independent of queue length",
                    (r[key] <= 2 and ratio <= 3) if last else None,
                    [r[key.replace("p50", "min")], r[key.replace("p50", "p95")]],
                    {f"ratio_{sizes[1]:,}_to_{sizes[0]:,}": round(ratio, 2)} if last else {},
                )
            )  # fmt: skip
    return out
