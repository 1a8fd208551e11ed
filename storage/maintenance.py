"""What `care-console doctor` reads about the database itself: schema version, integrity, number of messages."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import sqlite_utils

from storage import migrations
from storage.driver import repository, says, scalar


@dataclass(frozen=True, slots=True)
class DatabaseFacts:
    version: int  # the schema version the file is at
    latest: int  # the newest schema this app knows
    integrity: str  # "ok", or the engine's first complaint
    messages: int  # stored messages (mentions and follow-ups)

    @property
    def intact(self) -> bool:
        return self.integrity == "ok"

    @property
    def current(self) -> bool:
        return self.version >= self.latest


@repository
class MaintenanceRepo:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self._conn: sqlite3.Connection = db.conn

    @says("Could not check the database")
    def facts(self) -> DatabaseFacts:
        """Read the schema version, run the full integrity check (seconds on a large file) and count messages."""
        version = migrations.current_version(self._conn)
        integrity = str(scalar(self._conn, "PRAGMA integrity_check"))
        messages = int(scalar(self._conn, "SELECT count(*) FROM mentions"))
        return DatabaseFacts(version, migrations.LATEST, integrity, messages)
