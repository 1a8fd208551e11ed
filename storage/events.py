"""The append-only event log: every state change with its time and actor."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import sqlite_utils

from storage.driver import repository
from storage.rows import EventRow


@repository
class EventRepo:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.conn

    def append(self, *, at: int, actor: str, kind: str, mention_id: int | None = None, **data: Any) -> int:
        with self._db.atomic():
            cur = self._conn.execute(
                "INSERT INTO events (at, actor, mention_id, kind, data) VALUES (?,?,?,?,?)",
                (at, actor, mention_id, kind, json.dumps(data, sort_keys=True)),
            )
        return int(cur.lastrowid or 0)

    def for_mention(self, mention_id: int) -> list[EventRow]:
        rows = self._conn.execute(
            "SELECT id, at, actor, mention_id, kind, data FROM events WHERE mention_id = ? ORDER BY at, id",
            (mention_id,),
        ).fetchall()
        return [EventRow(int(r[0]), int(r[1]), str(r[2]), r[3], str(r[4]), str(r[5])) for r in rows]

    def count(self, kind: str) -> int:
        return int(self._conn.execute("SELECT count(*) FROM events WHERE kind = ?", (kind,)).fetchone()[0])
