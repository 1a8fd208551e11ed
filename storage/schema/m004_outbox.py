"""Migration 4: outbox columns (URL, target, correction link, freshness hold) and per-channel template variants."""

from __future__ import annotations

import sqlite3

from storage.schema import run_script

NUMBER = 4
NAME = "outbox and template variants"


def apply(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        ALTER TABLE replies ADD COLUMN url TEXT NOT NULL DEFAULT '';
        ALTER TABLE replies ADD COLUMN target_id INTEGER REFERENCES mentions(id);
        ALTER TABLE replies ADD COLUMN corrects_id INTEGER REFERENCES replies(id);
        ALTER TABLE replies ADD COLUMN hold_reason TEXT NOT NULL DEFAULT '';
        ALTER TABLE replies ADD COLUMN seen_at INTEGER;
        ALTER TABLE replies ADD COLUMN holding_until INTEGER;
        CREATE INDEX replies_queued ON replies (queued_at, id) WHERE state IN ('queued', 'sending');
        CREATE TABLE template_variants (
            template_id INTEGER NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
            channel TEXT NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (template_id, channel)
        );
        """,
    )
