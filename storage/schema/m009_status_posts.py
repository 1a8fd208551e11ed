"""Migration 9: status posts (the capacity update "answering in about 25 minutes"), an outbox with no mention."""

from __future__ import annotations

import sqlite3

from storage.schema import run_script

NUMBER = 9
NAME = "status posts"


def apply(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        -- replies.mention_id is NOT NULL: a status post answers no one, so it has its own small outbox table
        -- with the same life cycle (queued -> sending -> sent / failed) and an idempotency key.
        CREATE TABLE status_posts (
            id INTEGER PRIMARY KEY,
            account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            visibility TEXT NOT NULL DEFAULT 'public',
            purpose TEXT NOT NULL DEFAULT 'status',
            idempotency_key TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL DEFAULT 'queued',
            attempts INTEGER NOT NULL DEFAULT 0,
            external_id TEXT,
            url TEXT NOT NULL DEFAULT '',
            error TEXT NOT NULL DEFAULT '',
            wait_seconds INTEGER,
            created_at INTEGER NOT NULL,
            queued_at INTEGER NOT NULL,
            sent_at INTEGER,
            attempted_at INTEGER,
            next_attempt_at INTEGER
        );
        CREATE INDEX status_posts_pending ON status_posts (queued_at, id) WHERE state IN ('queued', 'sending');
        """,
    )
