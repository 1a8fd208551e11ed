"""Migration 7: a quarantine for channel items that could not be parsed (kept raw, with the parse error)."""

from __future__ import annotations

import sqlite3

from storage.schema import run_script

NUMBER = 7
NAME = "quarantine of malformed channel items"


def apply(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY,
            account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            external_id TEXT NOT NULL,
            error TEXT NOT NULL,
            raw_json TEXT NOT NULL,
            at INTEGER NOT NULL,
            UNIQUE (account_id, external_id, raw_json)
        );
        CREATE INDEX quarantine_account ON quarantine (account_id, at);
        """,
    )
