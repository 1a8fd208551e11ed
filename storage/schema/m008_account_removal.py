"""Migration 8: accounts can be removed while their items stay (removed_at), and edits/deletions upstream are kept."""

from __future__ import annotations

import sqlite3

from storage.schema import run_script

NUMBER = 8
NAME = "account removal and upstream edits"


def apply(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        ALTER TABLE accounts ADD COLUMN removed_at INTEGER;
        ALTER TABLE mentions ADD COLUMN upstream_deleted_at INTEGER;
        """,
    )
