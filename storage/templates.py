"""Reply templates and their per-channel variants."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import sqlite_utils

from storage.driver import fetch_all, repository, says, scalar
from storage.errors import StorageError
from storage.triage import split_tags


@dataclass(frozen=True, slots=True)
class TemplateRow:
    id: int
    name: str
    body: str
    channel: str | None  # None: every channel
    tags: tuple[str, ...]
    use_count: int
    created_at: int
    updated_at: int
    variants: dict[str, str]  # channel -> body


@repository
class TemplateRepo:
    """CRUD for ``templates`` and ``template_variants``; names are unique (case as typed)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.conn

    def _row(self, row: sqlite3.Row, variants: dict[str, str]) -> TemplateRow:
        return TemplateRow(
            id=int(row["id"]),
            name=str(row["name"]),
            body=str(row["body"]),
            channel=None if row["channel"] is None else str(row["channel"]),
            tags=split_tags(str(row["tags"])),
            use_count=int(row["use_count"]),
            created_at=int(row["created_at"]),
            updated_at=int(row["updated_at"]),
            variants=variants,
        )

    def all(self) -> list[TemplateRow]:
        """Every template with its variants, most used first, then by name."""
        variants: dict[int, dict[str, str]] = {}
        for template_id, channel, body in self._conn.execute(
            "SELECT template_id, channel, body FROM template_variants"
        ):
            variants.setdefault(int(template_id), {})[str(channel)] = str(body)
        rows = fetch_all(
            self._conn,
            "SELECT id, name, body, channel, tags, use_count, created_at, updated_at FROM templates "
            "ORDER BY use_count DESC, name COLLATE NOCASE",
        )
        return [self._row(r, variants.get(int(r["id"]), {})) for r in rows]

    def get(self, template_id: int) -> TemplateRow | None:
        return next((t for t in self.all() if t.id == template_id), None)

    def count(self) -> int:
        return int(scalar(self._conn, "SELECT count(*) FROM templates"))

    @says("Could not save the template")
    def save(
        self,
        *,
        name: str,
        body: str,
        tags: Sequence[str] = (),
        channel: str | None = None,
        variants: dict[str, str] | None = None,
        now: int,
        template_id: int | None = None,
    ) -> int:
        """Create (``template_id`` None) or update a template and replace its variants.

        Returns:
            The template id.

        Raises:
            StorageError: The name is empty or taken, or the write failed (nothing is changed then).
        """
        name = name.strip()
        if not name or not body.strip():
            raise StorageError("A template needs a name and a text.")
        tag_text = ", ".join(t.strip() for t in tags if t.strip())
        try:
            with self._db.atomic():
                if template_id is None:
                    cur = self._conn.execute(
                        "INSERT INTO templates (name, body, channel, tags, created_at, updated_at) "
                        "VALUES (?,?,?,?,?,?)",
                        (name, body, channel, tag_text, now, now),
                    )
                    template_id = int(cur.lastrowid or 0)
                else:
                    self._conn.execute(
                        "UPDATE templates SET name = ?, body = ?, channel = ?, tags = ?, updated_at = ? WHERE id = ?",
                        (name, body, channel, tag_text, now, template_id),
                    )
                if variants is not None:
                    self._conn.execute("DELETE FROM template_variants WHERE template_id = ?", (template_id,))
                    self._conn.executemany(
                        "INSERT INTO template_variants (template_id, channel, body) VALUES (?,?,?)",
                        [(template_id, ch, text) for ch, text in variants.items() if text.strip()],
                    )
        except sqlite3.IntegrityError as exc:  # the UNIQUE name: the agent's mistake, not the disk's
            raise StorageError(f"There is already a template called {name!r}.") from exc
        return template_id

    def delete(self, template_id: int) -> None:
        with self._db.atomic():
            self._conn.execute("UPDATE replies SET template_id = NULL WHERE template_id = ?", (template_id,))
            self._conn.execute("DELETE FROM templates WHERE id = ?", (template_id,))

    def record_use(self, template_ids: Sequence[int]) -> None:
        with self._db.atomic():
            self._conn.executemany(
                "UPDATE templates SET use_count = use_count + 1 WHERE id = ?", [(i,) for i in template_ids]
            )
