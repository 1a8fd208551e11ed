"""Migration 11: indexes for the Net Easy fatigue guard, answer reading and scoring queries on surveys."""

from __future__ import annotations

import sqlite3

from storage.schema import run_script

NUMBER = 11
NAME = "survey indexes"


def apply(conn: sqlite3.Connection) -> None:
    """Index surveys by customer (the 30-day and 24-hour guard, the last answer), send time (scores over a
    period), reply (delivery checks) and the flagged answers waiting for a hand score."""
    run_script(
        conn,
        """
        CREATE INDEX IF NOT EXISTS surveys_customer ON surveys (customer_id, sent_at);
        CREATE INDEX IF NOT EXISTS surveys_sent ON surveys (sent_at);
        CREATE INDEX IF NOT EXISTS surveys_reply ON surveys (reply_id);
        CREATE INDEX IF NOT EXISTS surveys_review ON surveys (parsed_at) WHERE needs_review = 1;
        """,
    )
