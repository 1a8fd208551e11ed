"""Migration 2: an index that keeps the SLA breach pass proportional to the breaches it finds."""

from __future__ import annotations

import sqlite3

from storage.schema import run_script

NUMBER = 2
NAME = "sla breach index"


def apply(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        -- Running deadlines not yet breached, by due time: the breach pass reads only what just passed.
        CREATE INDEX deadlines_unbreached ON deadlines (due_at)
            WHERE met_at IS NULL AND cancelled_at IS NULL AND breached_at IS NULL AND paused_at IS NULL;
        -- Heads with a deadline still running, for recomputing them after a policy change.
        CREATE INDEX deadlines_open_mention ON deadlines (mention_id)
            WHERE met_at IS NULL AND cancelled_at IS NULL;
        """,
    )
