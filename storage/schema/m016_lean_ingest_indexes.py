"""Migration 16: fewer indexes to maintain on every stored mention (ingest speed, issue #11).

Each secondary index costs every inserted mention or deadline one more B-tree insert; these four were not
worth it:

- ``mentions_thread`` (account_id, thread_key, posted_at): no query reads it; threads are found by head id.
- ``mentions_open_account`` and ``mentions_open_priority``: the account and priority filters of the Open
  view. The open queue is a few thousand heads at most; walking ``mentions_open_due`` in due order and
  filtering is as fast (see ``make bench``, queue_filters) and keeps the due order without a sort.
- ``deadlines_running`` (due_at, running only): no query reads it; ``deadlines_unbreached`` serves the
  breach pass and ``deadlines_open_mention`` the running heads.
"""

from __future__ import annotations

import sqlite3

from storage.schema import run_script

NUMBER = 16
NAME = "lean ingest indexes"


def apply(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        DROP INDEX IF EXISTS mentions_thread;
        DROP INDEX IF EXISTS mentions_open_account;
        DROP INDEX IF EXISTS mentions_open_priority;
        DROP INDEX IF EXISTS deadlines_running;
        """,
    )
