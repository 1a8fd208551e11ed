"""Migration 18: replies the agent chose to "send anyway" in team mode, and the review mark they carry.

- ``replies.override``: 1 when the agent sent the reply over a colleague's claim or while cut off from the team
  server (docs/TEAM.md, issue 22 item 4). The outbox's send gate lets such a reply pass; it is kept on the row so
  a restart, a retry or a crash recovery still knows the agent's choice.
- ``replies.review_reason``: why the reply needs a second look ("sent while offline from the team"); non-empty
  means marked for review (the supervisor's review lists it); a retry keeps it.
"""

from __future__ import annotations

import sqlite3

from storage.schema import run_script

NUMBER = 18
NAME = "team send anyway"


def apply(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        ALTER TABLE replies ADD COLUMN override INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE replies ADD COLUMN review_reason TEXT NOT NULL DEFAULT '';
        CREATE INDEX replies_review ON replies (id) WHERE review_reason != '';
        """,
    )
