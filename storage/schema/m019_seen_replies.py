"""Migration 19: where each account's reading of its own posts has got to (replies seen on the channel, #22 item 5).

The brand's own recent posts are read once per poll after the mentions, with a cursor of their own: the
mentions cursor (``sync_state.cursor``) pages notifications, a different list with different ids.
"""

from __future__ import annotations

import sqlite3

from storage.schema import run_script

NUMBER = 19
NAME = "seen replies"


def apply(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE own_posts_state (
            account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
            cursor TEXT
        );
        """,
    )
