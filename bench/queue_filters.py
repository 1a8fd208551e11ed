"""Filter changes and searches as the queue runs them: one page of ids per view, filter or search (issue 7)."""

from __future__ import annotations

import statistics

from bench import generate
from bench.figures import Figure, percentile, repeat
from console.queue import QueueQuery, QueueView
from storage.db import open_database
from storage.queue_queries import QueueQueryRepo
from storage.rows import MentionKind
from widgets.queue_model import PAGE_SIZE

#: Filter changes an agent makes: views, then each filter chip on the Open view and on All.
FILTERS: list[QueueQuery] = [
    QueueQuery(view=QueueView.OPEN),
    QueueQuery(view=QueueView.BREACHED),
    QueueQuery(view=QueueView.WAITING),
    QueueQuery(view=QueueView.FOLLOW_UPS),
    QueueQuery(view=QueueView.RESOLVED_TODAY),
    QueueQuery(view=QueueView.ALL),
    QueueQuery(channels=frozenset({"bluesky"})),
    QueueQuery(account_ids=frozenset({3})),
    QueueQuery(priorities=frozenset({1})),
    QueueQuery(tags=frozenset({"billing"})),
    QueueQuery(kinds=frozenset({MentionKind.DIRECT})),
    QueueQuery(newcomer=True),
    QueueQuery(view=QueueView.ALL, channels=frozenset({"discourse"})),
    QueueQuery(view=QueueView.ALL, priorities=frozenset({1}), kinds=frozenset({MentionKind.DIRECT})),
    QueueQuery(view=QueueView.ALL, tags=frozenset({"returns"})),
    QueueQuery(view=QueueView.ALL, newcomer=True),
]

#: Searches as typed in the box (the last word is a prefix while typing).
SEARCHES: list[QueueQuery] = [
    *(QueueQuery(search=s) for s in ("parcel", "invo", "charged twice", "customer42", "dark mode", "courier rain")),
    *(QueueQuery(view=QueueView.ALL, search=s) for s in ("parcel", "invo", "charged twice", "customer42", "zzz")),
]


def _figure(label: str, n: int, times: list[float], extra: dict[str, object]) -> Figure:
    p95 = percentile(times, 0.95)
    return Figure(
        f"{label}, {n:,} mentions (p50; first page of {PAGE_SIZE:,} ids)",
        round(statistics.median(times), 2),
        "ms",
        "<= 50 ms p95",
        p95 <= 50,
        [round(min(times), 2), round(p95, 2)],
        extra,
    )


def filter_and_search(n: int = 1_000_000, runs: int = 5) -> list[Figure]:
    """p50/p95 of a filter change and of a full-text search, each one ``QueueQueryRepo.queue_ids`` page."""
    db = open_database(generate.database(n))
    try:
        repo = QueueQueryRepo(db)
        now, day_start = generate.NOW, generate.NOW - 86_400

        def measure(queries: list[QueueQuery]) -> tuple[list[float], dict[str, float]]:
            times: list[float] = []
            worst: dict[str, float] = {}
            for query in queries:
                spent = repeat(lambda q=query: repo.queue_ids(q, now=now, day_start=day_start, limit=PAGE_SIZE), runs)  # type: ignore[misc]
                times += spent
                worst[_name(query)] = round(max(spent), 2)
            return times, worst

        filter_times, filter_worst = measure(FILTERS)
        search_times, search_worst = measure(SEARCHES)
        slowest_filter = max(filter_worst, key=filter_worst.__getitem__)
        slowest_search = max(search_worst, key=search_worst.__getitem__)
        return [
            _figure(
                "filter change (view or chip)",
                n,
                filter_times,
                {f"slowest: {slowest_filter}": filter_worst[slowest_filter]},
            ),
            _figure(
                "full-text search in the queue",
                n,
                search_times,
                {f"slowest: {slowest_search}": search_worst[slowest_search]},
            ),
        ]
    finally:
        db.conn.close()


def _name(query: QueueQuery) -> str:
    parts = [query.view.value]
    for field in ("channels", "account_ids", "priorities", "tags", "kinds"):
        values = getattr(query, field)
        if values:
            parts.append(f"{field}={','.join(sorted(str(v) for v in values))}")
    if query.newcomer is not None:
        parts.append(f"newcomer={query.newcomer}")
    if query.search:
        parts.append(f"search={query.search!r}")
    return " ".join(parts)


if __name__ == "__main__":
    import sys

    for figure in filter_and_search(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000):
        print(figure.row())
