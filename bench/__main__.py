"""`make bench`: measure storage ingest and queue reads against the DESIGN.md budgets; print and save JSON."""

from __future__ import annotations

import json
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from console.sla import SlaPolicy
from storage.accounts import AccountRepo
from storage.db import open_database
from storage.mentions import MentionRepo, QueueView
from storage.rows import MentionKind, NewMention

RESULTS = Path(__file__).with_name("results.json")
T0 = 1_767_225_600
WORDS = [
    "order",
    "refund",
    "login",
    "shipping",
    "parcel",
    "app",
    "crash",
    "billing",
    "invoice",
    "password",
    "thanks",
    "love",
    "late",
    "broken",
]


def make_items(n: int, *, seed: int = 1, account_id: int = 1) -> list[NewMention]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        author = rng.randrange(max(1, n // 4))
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30)))
        items.append(
            NewMention(
                account_id=account_id,
                external_id=str(10_000_000 + i),
                author_external_id=f"a{author}",
                author_handle=f"user{author}@example.social",
                author_name=f"User {author}",
                text=text,
                url=f"https://example.social/@u/{i}",
                posted_at=T0 + i,
                kind=MentionKind.PUBLIC,
                visibility="public",
                parent_external_id=None,
                raw_json="{}",
            )
        )
    return items


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def bench_ingest(n: int, runs: int = 3) -> dict[str, object]:
    items = make_items(n)
    rates, raw_rates = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            db = open_database(Path(tmp) / "b.sqlite3")
            AccountRepo(db).add(kind="mastodon", handle="care", base_url="x", now=T0)
            repo = MentionRepo(db)
            start = time.perf_counter()
            for chunk in range(0, n, 500):
                repo.store_batch(items[chunk : chunk + 500], channel="mastodon", fetched_at=T0, plan=SlaPolicy().plan)
            rates.append(n / (time.perf_counter() - start))
            db.conn.close()
            raw = sqlite3.connect(Path(tmp) / "raw.sqlite3", isolation_level=None)
            raw.execute("PRAGMA journal_mode=WAL")
            raw.execute(
                "CREATE TABLE mentions (id INTEGER PRIMARY KEY, account_id, external_id, author_handle, text, url, "
                "posted_at, UNIQUE(account_id, external_id))"
            )
            rows = [(i.account_id, i.external_id, i.author_handle, i.text, i.url, i.posted_at) for i in items]
            start = time.perf_counter()
            raw.execute("BEGIN")
            raw.executemany(
                "INSERT INTO mentions (account_id, external_id, author_handle, text, url, posted_at) "
                "VALUES (?,?,?,?,?,?)",
                rows,
            )
            raw.execute("COMMIT")
            raw_rates.append(n / (time.perf_counter() - start))
            raw.close()
    median = statistics.median(rates)
    return {
        "figure": f"ingest {n} mentions (dedupe + FTS + deadlines, batches of 500)",
        "value": round(median),
        "unit": "mentions/s",
        "spread": [round(min(rates)), round(max(rates))],
        "budget": ">= 50000 mentions/s",
        "pass": median >= 50_000,
        "ratio_to_raw_executemany": round(median / statistics.median(raw_rates), 3),
    }


def bench_queue_read(n: int, runs: int = 20) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(Path(tmp) / "b.sqlite3")
        AccountRepo(db).add(kind="mastodon", handle="care", base_url="x", now=T0)
        repo = MentionRepo(db)
        items = make_items(n)
        for chunk in range(0, n, 5000):
            repo.store_batch(items[chunk : chunk + 5000], channel="mastodon", fetched_at=T0, plan=SlaPolicy().plan)
        db.conn.execute("ANALYZE")
        times = sorted(timed(lambda: repo.queue_ids(QueueView.OPEN), runs))
        db.conn.close()
    p50, p95 = statistics.median(times) * 1000, times[int(0.95 * (len(times) - 1))] * 1000
    return {
        "figure": f"open queue ids in due order, {n} mentions (p50; p95 in spread)",
        "value": round(p50, 2),
        "unit": "ms",
        "spread": [round(times[0] * 1000, 2), round(p95, 2)],
        "budget": "reported (view switch budget: <= 50 ms p95 at 1M, issue #11)",
        "pass": True,
    }


def main() -> int:
    figures = [bench_ingest(20_000), bench_queue_read(100_000)]
    report = {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "sqlite": sqlite3.sqlite_version,
        },
        "figures": figures,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'figure':<72} {'value':>12} {'unit':<12} {'budget':<28} pass")
    for f in figures:
        print(f"{f['figure']:<72} {f['value']!s:>12} {f['unit']!s:<12} {f['budget']!s:<28} {f['pass']}")
        if "ratio_to_raw_executemany" in f:
            print(f"{'  ratio to raw executemany of the same rows':<72} {f['ratio_to_raw_executemany']!s:>12}")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
