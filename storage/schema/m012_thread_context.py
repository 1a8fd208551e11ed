"""Migration 12: messages of a thread fetched from the channel (not stored as mentions), cached per queue item."""

from __future__ import annotations

import sqlite3

from storage.schema import run_script

NUMBER = 12
NAME = "thread context cache"


def apply(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE thread_context (
            head_id INTEGER NOT NULL REFERENCES mentions(id) ON DELETE CASCADE,
            external_id TEXT NOT NULL,
            author_handle TEXT NOT NULL,
            author_name TEXT NOT NULL,
            text TEXT NOT NULL,
            url TEXT NOT NULL,
            posted_at INTEGER NOT NULL,
            kind TEXT NOT NULL,
            PRIMARY KEY (head_id, external_id)
        );
        CREATE TABLE thread_fetches (
            head_id INTEGER PRIMARY KEY REFERENCES mentions(id) ON DELETE CASCADE,
            fetched_at INTEGER NOT NULL
        );
        """,
    )
