"""Account administration: remove an account (keeping or deleting its items) and list the active ones."""

from __future__ import annotations

import sqlite3

import sqlite_utils

from storage.driver import chunked, fetch_all, qmarks, repository, says, scalar

__all__ = ["AccountAdmin"]


@repository
class AccountAdmin:
    """Removal needs care: items, replies, surveys and events point at the account's mentions."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.conn

    def removed_ids(self) -> set[int]:
        """Accounts removed with their items kept (hidden from the accounts list, never polled)."""
        return {
            int(account_id)
            for (account_id,) in self._conn.execute("SELECT id FROM accounts WHERE removed_at IS NOT NULL")
        }

    def restore(self, account_id: int) -> None:
        """Undo a removal that kept the items (the same account was added again)."""
        with self._db.atomic():
            self._conn.execute("UPDATE accounts SET removed_at = NULL WHERE id = ?", (account_id,))

    def item_count(self, account_id: int) -> int:
        """How many stored messages belong to the account."""
        return int(scalar(self._conn, "SELECT COUNT(*) FROM mentions WHERE account_id = ?", (account_id,)))

    @says("Could not remove the account")
    def remove(self, account_id: int, *, delete_items: bool, now: int) -> int:
        """Remove an account.

        Args:
            account_id: The account.
            delete_items: True: delete its messages and everything that refers to them (replies, deadlines,
                surveys, events), then the account. False: keep the items (searchable, reportable) and
                mark the account removed and disabled.
            now: Epoch seconds, recorded as ``removed_at``.

        Returns:
            The number of messages deleted (0 when kept).

        Raises:
            StorageError: Nothing was changed.
        """
        with self._db.atomic():
            if not delete_items:
                self._conn.execute("UPDATE accounts SET removed_at = ?, enabled = 0 WHERE id = ?", (now, account_id))
                return 0
            ids = [
                mention_id
                for (mention_id,) in self._conn.execute("SELECT id FROM mentions WHERE account_id = ?", (account_id,))
            ]
            if ids:
                self._delete_referring("mentions", ids, depth=0)
                self._conn.execute("UPDATE mentions SET head_id = NULL WHERE account_id = ?", (account_id,))
                self._conn.execute("DELETE FROM mentions WHERE account_id = ?", (account_id,))
            self._conn.execute("DELETE FROM accounts WHERE id = ?", (account_id,))
            return len(ids)

    def _delete_referring(self, table: str, ids: list[int], *, depth: int) -> None:
        """Delete (or detach) rows of every table whose foreign key points at ``table`` rows ``ids``."""
        if depth > 4 or not ids:
            return
        tables = [name for (name,) in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for other in tables:
            if other == table or other.startswith(("sqlite_", "mentions_fts")):
                continue
            for fk in fetch_all(self._conn, f'PRAGMA foreign_key_list("{other}")'):
                if fk["table"] != table:
                    continue
                column = fk["from"]
                for chunk in chunked(ids):
                    marks = qmarks(len(chunk))
                    child_ids = [
                        rowid
                        for (rowid,) in self._conn.execute(
                            f'SELECT rowid FROM "{other}" WHERE "{column}" IN ({marks})', chunk
                        )
                    ]
                    self._delete_referring(other, child_ids, depth=depth + 1)
                    self._conn.execute(f'DELETE FROM "{other}" WHERE "{column}" IN ({marks})', chunk)
