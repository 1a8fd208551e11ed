"""What the channel-health view reads: the quarantine of unparseable items and the replies still waiting."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

import sqlite_utils

from storage.driver import fetch_all, qmarks, repository, says, scalar
from storage.rows import ReplyState

#: Reply states that mean "not sent yet, will be" (the outbox owns the transitions).
WAITING_REPLY_STATES = (ReplyState.QUEUED.value, ReplyState.SENDING.value)


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    id: int
    account_id: int
    external_id: str  # the channel's id of the entry, "?" when it had none
    error: str  # why it could not be parsed
    raw_json: str  # the entry exactly as received
    at: int


def _quarantine_row(r: sqlite3.Row) -> QuarantineRow:
    return QuarantineRow(
        id=int(r["id"]), account_id=int(r["account_id"]), external_id=str(r["external_id"]), error=str(r["error"]),
        raw_json=str(r["raw_json"]), at=int(r["at"]),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    external_id: str
    error: str
    raw_json: str


@repository
class HealthRepo:
    """Quarantined items (never lost, never crashing a batch) and counts for the status bar."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.conn

    @says("Could not keep the malformed items aside")
    def quarantine(self, account_id: int, entries: Iterable[QuarantineEntry], *, at: int) -> int:
        """Keep malformed items raw with their parse error; the same entry seen again is kept once.

        Args:
            account_id: The account whose channel sent them.
            entries: The entries.
            at: When they were received (epoch seconds).

        Returns:
            How many entries were new.

        Raises:
            StorageError: The database refused the write.
        """
        rows = [(account_id, e.external_id, e.error[:1000], e.raw_json, at) for e in entries]
        if not rows:
            return 0
        with self._db.atomic():
            before = self._conn.total_changes
            self._conn.executemany(
                "INSERT INTO quarantine (account_id, external_id, error, raw_json, at) VALUES (?,?,?,?,?) "
                "ON CONFLICT DO NOTHING",
                rows,
            )
            return self._conn.total_changes - before

    def quarantined(self, account_id: int | None = None, *, limit: int = 200) -> list[QuarantineRow]:
        """Newest first."""
        sql = "SELECT id, account_id, external_id, error, raw_json, at FROM quarantine"
        params: tuple[int, ...] = ()
        if account_id is not None:
            sql += " WHERE account_id = ?"
            params = (account_id,)
        rows = fetch_all(self._conn, sql + " ORDER BY at DESC, id DESC LIMIT ?", (*params, limit))
        return [_quarantine_row(r) for r in rows]

    def quarantined_by_ids(self, ids: Iterable[int]) -> list[QuarantineRow]:
        """These quarantined items (those still there), oldest first."""
        wanted = sorted({int(i) for i in ids})
        if not wanted:
            return []
        marks = qmarks(len(wanted))
        rows = fetch_all(
            self._conn,
            f"SELECT id, account_id, external_id, error, raw_json, at FROM quarantine WHERE id IN ({marks}) "
            "ORDER BY at, id",
            wanted,
        )
        return [_quarantine_row(r) for r in rows]

    @says("Could not remove the unreadable items")
    def dismiss(self, ids: Iterable[int]) -> int:
        """Remove quarantined items (the agent dismissed them, or they were read after all).

        Returns:
            How many were removed.

        Raises:
            StorageError: The database refused the write.
        """
        wanted = [(int(i),) for i in set(ids)]
        with self._db.atomic():
            before = self._conn.total_changes
            self._conn.executemany("DELETE FROM quarantine WHERE id = ?", wanted)
            return self._conn.total_changes - before

    @says("Could not update the unreadable item")
    def set_error(self, quarantine_id: int, error: str) -> None:
        """Record why an item still cannot be read (after a retry with a newer version)."""
        with self._db.atomic():
            self._conn.execute("UPDATE quarantine SET error = ? WHERE id = ?", (error[:1000], quarantine_id))

    def quarantine_counts(self) -> dict[int, int]:
        """Quarantined items per account id."""
        rows = self._conn.execute("SELECT account_id, count(*) FROM quarantine GROUP BY account_id")
        return {int(account_id): int(count) for account_id, count in rows}

    def waiting_replies(self) -> int:
        """Replies committed to the outbox that have not gone out yet."""
        # Literals, not parameters: only then does SQLite count on the partial index replies_queued instead of
        # scanning every sent reply (80 ms with a million replies).
        states = ", ".join(f"'{state}'" for state in WAITING_REPLY_STATES)
        return int(scalar(self._conn, f"SELECT count(*) FROM replies WHERE state IN ({states})"))
