"""Accounts and their sync state: channel identity, health, the opaque cursor and the poll schedule."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import sqlite_utils

from storage.driver import fetch_one, named, repository, says, scalar
from storage.rows import AccountRow, Health, SyncStateRow

_ACCOUNT_COLUMNS = "id, kind, handle, base_url, display_name, health, health_reason, enabled, is_sandbox, created_at"


def _account(row: sqlite3.Row) -> AccountRow:
    return AccountRow(
        id=int(row["id"]),
        kind=str(row["kind"]),
        handle=str(row["handle"]),
        base_url=str(row["base_url"]),
        display_name=str(row["display_name"]),
        health=Health(row["health"]),
        health_reason=str(row["health_reason"]),
        enabled=bool(row["enabled"]),
        is_sandbox=bool(row["is_sandbox"]),
        created_at=int(row["created_at"]),
    )


@repository
class AccountRepo:
    """Accounts never hold a token: tokens live in the SecretStore (OS keyring)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.conn

    @says("Could not save the account {handle}")
    def add(
        self,
        *,
        kind: str,
        handle: str,
        base_url: str,
        display_name: str = "",
        is_sandbox: bool = False,
        now: int,
    ) -> AccountRow:
        """Create an account, or return the existing one with the same kind, base URL and handle."""
        with self._db.atomic():
            self._conn.execute(
                "INSERT INTO accounts (kind, handle, base_url, display_name, is_sandbox, created_at) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT (kind, base_url, handle) DO NOTHING",
                (kind, handle, base_url, display_name, int(is_sandbox), now),
            )
            row = fetch_one(
                self._conn,
                f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE kind = ? AND base_url = ? AND handle = ?",
                (kind, base_url, handle),
            )
            assert row is not None  # inserted above, or there already
            self._conn.execute(
                "INSERT INTO sync_state (account_id) VALUES (?) ON CONFLICT DO NOTHING", (int(row["id"]),)
            )
        return _account(row)

    def get(self, account_id: int) -> AccountRow | None:
        row = fetch_one(self._conn, f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (account_id,))
        return None if row is None else _account(row)

    def list(self, *, enabled_only: bool = False, include_sandbox: bool = True) -> list[AccountRow]:
        sql = f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE 1"
        if enabled_only:
            sql += " AND enabled = 1"
        if not include_sandbox:
            sql += " AND is_sandbox = 0"
        return [_account(r) for r in named(self._conn).execute(sql + " ORDER BY id")]

    def set_health(self, account_id: int, health: Health, reason: str = "") -> None:
        with self._db.atomic():
            self._conn.execute(
                "UPDATE accounts SET health = ?, health_reason = ? WHERE id = ?", (health.value, reason, account_id)
            )

    def set_enabled(self, account_id: int, enabled: bool) -> None:
        with self._db.atomic():
            self._conn.execute("UPDATE accounts SET enabled = ? WHERE id = ?", (int(enabled), account_id))


@repository
class SyncStateRepo:
    """The cursor is saved only after its batch is stored (at-least-once fetch, channels.md §0)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.conn

    def get(self, account_id: int) -> SyncStateRow:
        row = fetch_one(
            self._conn,
            "SELECT account_id, cursor, last_success_at, next_attempt_at, consecutive_failures, last_error "
            "FROM sync_state WHERE account_id = ?",
            (account_id,),
        )
        if row is None:
            return SyncStateRow(account_id, None, None, None, 0, "")
        cursor = json.loads(row["cursor"]) if row["cursor"] else None
        return SyncStateRow(
            account_id=int(row["account_id"]),
            cursor=cursor if isinstance(cursor, dict) else None,
            last_success_at=None if row["last_success_at"] is None else int(row["last_success_at"]),
            next_attempt_at=None if row["next_attempt_at"] is None else int(row["next_attempt_at"]),
            consecutive_failures=int(row["consecutive_failures"]),
            last_error=str(row["last_error"]),
        )

    @says("Could not save the sync position")
    def record_success(self, account_id: int, *, cursor: dict[str, Any] | None, at: int, next_attempt_at: int) -> None:
        """Save the cursor (when it moved) and reset the failure count, in one transaction."""
        with self._db.atomic():
            self._conn.execute("INSERT INTO sync_state (account_id) VALUES (?) ON CONFLICT DO NOTHING", (account_id,))
            if cursor is not None:
                self._conn.execute(
                    "UPDATE sync_state SET cursor = ? WHERE account_id = ?",
                    (json.dumps(cursor, sort_keys=True), account_id),
                )
            self._conn.execute(
                "UPDATE sync_state SET last_success_at = ?, next_attempt_at = ?, consecutive_failures = 0, "
                "last_error = '' WHERE account_id = ?",
                (at, next_attempt_at, account_id),
            )

    def set_next_attempt(self, account_id: int, next_attempt_at: int) -> None:
        """Move the persisted next attempt (e.g. to now, after the agent signed in again)."""
        with self._db.atomic():
            self._conn.execute("INSERT INTO sync_state (account_id) VALUES (?) ON CONFLICT DO NOTHING", (account_id,))
            self._conn.execute(
                "UPDATE sync_state SET next_attempt_at = ? WHERE account_id = ?", (next_attempt_at, account_id)
            )

    def record_failure(self, account_id: int, *, error: str, next_attempt_at: int) -> int:
        """Count a failed poll and persist when to try again; returns the consecutive failure count."""
        with self._db.atomic():
            self._conn.execute("INSERT INTO sync_state (account_id) VALUES (?) ON CONFLICT DO NOTHING", (account_id,))
            self._conn.execute(
                "UPDATE sync_state SET consecutive_failures = consecutive_failures + 1, last_error = ?, "
                "next_attempt_at = ? WHERE account_id = ?",
                (error, next_attempt_at, account_id),
            )
            failures = scalar(
                self._conn, "SELECT consecutive_failures FROM sync_state WHERE account_id = ?", (account_id,)
            )
        return int(failures)
