"""Migration 17: the local side of team mode (docs/TEAM.md "Local side").

The SQLite file stays the working copy; these tables remember what this copy holds of the team's event log:

- ``events.remote_uid``: the team event an event was written for while applying it, so the pusher never
  sends a colleague's change back (NULL for the copy's own events).
- ``team_state``: watermarks (``pushed_event_id``, ``pushed_mention_id``, ``pulled_seq``) and ``member_uuid``.
- ``team_applied``: every team event uid this copy holds (pushed or applied), with its server ``seq`` once
  known and the item it is about: the digest is computed over it, and "is our own change newer than theirs"
  is answered from it.
- ``team_claims``: the mirror of live claims the queue and the conversation show without a round trip.
- ``team_conflicts``: an own change that a colleague's overrode (or the other way round), shown to the
  agent, never silently dropped.
- ``team_parked``: team events about an item whose mention has not arrived yet; applied when it does.
"""

from __future__ import annotations

import sqlite3

from storage.schema import run_script

NUMBER = 17
NAME = "team mode local copy"


def apply(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        ALTER TABLE events ADD COLUMN remote_uid TEXT;
        CREATE INDEX events_remote_uid ON events (remote_uid) WHERE remote_uid IS NOT NULL;
        CREATE TABLE team_state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE team_applied (
            uid TEXT PRIMARY KEY,
            seq INTEGER,
            kind TEXT NOT NULL,
            item_key TEXT
        ) WITHOUT ROWID;
        CREATE INDEX team_applied_item ON team_applied (item_key, kind, seq) WHERE item_key IS NOT NULL;
        CREATE TABLE team_claims (
            item_key TEXT PRIMARY KEY,
            mention_id INTEGER,
            holder TEXT NOT NULL,
            claimed_at REAL NOT NULL,
            expires_at REAL NOT NULL
        );
        CREATE INDEX team_claims_mention ON team_claims (mention_id) WHERE mention_id IS NOT NULL;
        CREATE TABLE team_conflicts (
            id INTEGER PRIMARY KEY,
            at INTEGER NOT NULL,
            mention_id INTEGER,
            item_key TEXT,
            kind TEXT NOT NULL,
            ours TEXT NOT NULL DEFAULT '{}',
            theirs TEXT NOT NULL DEFAULT '{}',
            winner TEXT NOT NULL CHECK (winner IN ('ours', 'theirs', 'server')),
            reason TEXT NOT NULL,
            seen INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX team_conflicts_unseen ON team_conflicts (id) WHERE seen = 0;
        CREATE TABLE team_parked (
            uid TEXT PRIMARY KEY,
            seq INTEGER NOT NULL,
            item_key TEXT NOT NULL,
            author TEXT NOT NULL,
            at INTEGER NOT NULL,
            kind TEXT NOT NULL,
            data TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX team_parked_item ON team_parked (item_key, seq);
        """,
    )
