"""Deterministic, realistic benchmark databases (10k, 100k, 1M mentions), written in bulk and cached."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from storage import migrations
from storage.db import open_database

CACHE = Path(__file__).with_name(".cache")
NOW = 1_767_225_600  # the "now" every benchmark uses: 2026-01-01T00:00:00Z

CHANNELS = (("mastodon", "care@social.example"), ("bluesky", "care.example.com"), ("discourse", "care"))
OPENERS = ["hi", "hey", "hello", "morning!", "quick question:", "ugh,", "thanks!", "help please,"]
TOPICS = [
    "my order {n} still says processing after five days",
    "the app crashes when I open my invoices",
    "I was charged twice for order {n}",
    "cannot log in since the password reset",
    "parcel {n} shows delivered but nothing arrived",
    "how do I return a jacket that does not fit",
    "love the new release, the dark mode is great",
    "your courier left my package in the rain",
    "is there a way to change the delivery address for {n}",
    "the discount code from the newsletter does not work",
]
CLOSERS = ["", "any news?", "please help", "thanks in advance", "this is the third time I ask", "🙏", "cheers"]
TAGS = ["", "", "", "shipping", "billing", "login", "returns", "app-bug", "praise", "delivery"]


def _text(rng: random.Random) -> str:
    topic = rng.choice(TOPICS).format(n=f"#{rng.randrange(10_000, 99_999)}")
    return " ".join(part for part in (rng.choice(OPENERS), topic, rng.choice(CLOSERS)) if part)


def path_for(n: int, seed: int) -> Path:
    return CACHE / f"mentions-{n}-seed{seed}-schema{migrations.LATEST}.sqlite3"


def database(n: int, *, seed: int = 1, open_share: float = 0.02) -> Path:
    """The cached database of ``n`` mentions, generated on first use (a minute for 1,000,000)."""
    path = path_for(n, seed)
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    for stale in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
        stale.unlink(missing_ok=True)
    db = open_database(tmp)
    try:
        _fill(db.conn, n, seed, open_share)
    finally:
        db.conn.close()
    tmp.rename(path)
    return path


def _fill(conn: sqlite3.Connection, n: int, seed: int, open_share: float) -> None:
    rng = random.Random(seed)
    started = time.perf_counter()
    conn.execute("BEGIN")
    for i, (kind, handle) in enumerate(CHANNELS, start=1):
        conn.execute(
            "INSERT INTO accounts (id, kind, handle, base_url, display_name, created_at) VALUES (?,?,?,?,?,?)",
            (i, kind, handle, f"https://{kind}.example", kind.title(), NOW - 400 * 86400),
        )
        conn.execute("INSERT INTO sync_state (account_id) VALUES (?)", (i,))
    customers = max(10, n // 4)
    conn.executemany(
        "INSERT INTO customers (id, channel, external_id, handle, display_name, first_seen_at, contact_count) "
        "VALUES (?,?,?,?,?,?,?)",
        (
            (c, CHANNELS[c % 3][0], f"cust-{c}", f"customer{c}", f"Customer {c}", NOW - 365 * 86400, 1)
            for c in range(1, customers + 1)
        ),
    )
    span = 365 * 86400
    mentions, deadlines, events, replies = [], [], [], []
    head_of: list[int] = []
    for mid in range(1, n + 1):
        posted = NOW - span + (mid * span) // n + rng.randrange(0, 60)
        customer = 1 + int(rng.paretovariate(1.2) * 7) % customers  # a few customers write a lot
        account = 1 + customer % 3
        follow_up = head_of and rng.random() < 0.2
        head = rng.choice(head_of[-50:]) if follow_up else None
        age_share = (NOW - posted) / span
        # A realistic open queue: the last few hours plus a thin tail of forgotten items.
        is_open = head is None and (age_share < 0.0005 or rng.random() < open_share * 0.02)
        status = (
            ("open" if rng.random() < 0.5 else "new")
            if is_open
            else rng.choice(["resolved"] * 12 + ["waiting", "community", "spam"])
        )
        due = posted + 1800 if head is None else None
        mentions.append(
            (mid, account, f"ext-{mid}", f"ext-{head or mid}", head, f"ext-{head}" if head else None, customer,
             f"customer{customer}", f"Customer {customer}", _text(rng), f"https://example/{mid}", posted, posted + 5,
             "direct" if rng.random() < 0.15 else "public", status, rng.choice([1, 2, 2, 2, 3]), rng.choice(TAGS),
             int(rng.random() < 0.1), due if status in ("new", "open") else None,
             (due - 450) if due and status in ("new", "open") else None, posted, '{"id":"' + str(mid) + '"}')
        )  # fmt: skip
        events.append((posted, "sync", mid, "received", "{}"))
        if head is None:
            assert due is not None  # every head has a first-response clock
            head_of.append(mid)
            first_met = None if status in ("new", "open") else posted + rng.randrange(120, 5400)
            breached = due if (first_met is None and due < NOW) or (first_met and first_met > due) else None
            deadlines.append((mid, "first_response", posted, due, due - 450, first_met, breached))
            resolved_at = posted + rng.randrange(600, 86400) if status == "resolved" else None
            deadlines.append((mid, "resolution", posted, posted + 86400, posted + 64800, resolved_at, None))
            if first_met:
                replies.append(
                    (mid, "Thanks for reaching out, I'm on it.", f"key-{mid}", "sent", f"r-{mid}", first_met)
                )
                events.append((first_met, "agent", mid, "reply_sent", json.dumps({"purpose": "reply"})))
            if resolved_at:
                events.append((resolved_at, "agent", mid, "status_changed", '{"from":"open","to":"resolved"}'))
        if len(mentions) >= 50_000:
            _flush(conn, mentions, deadlines, events, replies)
    _flush(conn, mentions, deadlines, events, replies)
    conn.execute("INSERT INTO mentions_fts (mentions_fts) VALUES ('rebuild')")
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    print(f"bench: generated {n} mentions in {time.perf_counter() - started:.1f} s")


def _flush(conn: sqlite3.Connection, mentions: list, deadlines: list, events: list, replies: list) -> None:  # type: ignore[type-arg]
    conn.executemany(
        "INSERT INTO mentions (id, account_id, external_id, thread_key, head_id, parent_external_id, customer_id, "
        "author_handle, author_name, text, url, posted_at, fetched_at, kind, status, priority, tags, "
        "is_first_contact, due_at, warn_at, last_message_at, raw) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        mentions,
    )
    conn.executemany(
        "INSERT INTO deadlines (mention_id, kind, started_at, due_at, warn_at, met_at, breached_at) "
        "VALUES (?,?,?,?,?,?,?)",
        deadlines,
    )
    conn.executemany("INSERT INTO events (at, actor, mention_id, kind, data) VALUES (?,?,?,?,?)", events)
    conn.executemany(
        "INSERT INTO replies (mention_id, text, idempotency_key, state, external_id, sent_at, created_at) "
        "VALUES (?,?,?,?,?,?,?)",
        [(*r, r[-1]) for r in replies],
    )
    for batch in (mentions, deadlines, events, replies):
        batch.clear()


def chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


if __name__ == "__main__":
    for size in (10_000, 100_000, 1_000_000):
        print(database(size))
