"""Migration 3: indexes for the queue views, filters and alerts, and the tag vocabulary for completion."""

from __future__ import annotations

import sqlite3

from storage.schema import run_script

NUMBER = 3
NAME = "queue views, filters and tags"


def apply(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        -- Waiting on customer: heads in that status, longest wait first.
        CREATE INDEX mentions_waiting ON mentions (last_message_at, id)
            WHERE head_id IS NULL AND status = 'waiting';
        -- Alerts: open heads by the time they enter the warning band.
        CREATE INDEX mentions_open_warn ON mentions (warn_at, id)
            WHERE head_id IS NULL AND status IN ('new', 'open');
        -- Filters on the Open view that would otherwise walk the due-time index far.
        CREATE INDEX mentions_open_account ON mentions (account_id, due_at, id)
            WHERE head_id IS NULL AND status IN ('new', 'open');
        CREATE INDEX mentions_open_priority ON mentions (priority, due_at, id)
            WHERE head_id IS NULL AND status IN ('new', 'open');
        -- Follow-ups due: running follow-up commitments, soonest first.
        CREATE INDEX deadlines_follow_up ON deadlines (due_at, mention_id)
            WHERE kind = 'follow_up' AND met_at IS NULL AND cancelled_at IS NULL;
        -- Resolved today: status changes since local midnight.
        CREATE INDEX events_kind_at ON events (kind, at);
        -- Every tag ever used, for completion; kept by the triage repository.
        CREATE TABLE tags (
            name TEXT PRIMARY KEY,
            use_count INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        """,
    )
    rows = conn.execute("SELECT tags FROM mentions WHERE tags != ''").fetchall()
    counts: dict[str, int] = {}
    for (tags,) in rows:
        for tag in str(tags).split(","):
            if tag.strip():
                counts[tag.strip()] = counts.get(tag.strip(), 0) + 1
    conn.executemany("INSERT INTO tags (name, use_count) VALUES (?, ?)", sorted(counts.items()))
