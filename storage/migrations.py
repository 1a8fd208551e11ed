"""Numbered schema migrations, tracked in PRAGMA user_version; the only place the schema changes."""

from __future__ import annotations

import importlib
import pkgutil
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from storage import schema


@dataclass(frozen=True, slots=True)
class Migration:
    number: int
    name: str
    apply: Callable[[sqlite3.Connection], None]


def _discover() -> tuple[Migration, ...]:
    found: list[Migration] = []
    for info in pkgutil.iter_modules(schema.__path__):
        if not info.name.startswith("m"):
            continue
        module = importlib.import_module(f"{schema.__name__}.{info.name}")
        found.append(Migration(int(module.NUMBER), str(module.NAME), module.apply))
    found.sort(key=lambda m: m.number)
    numbers = [m.number for m in found]
    if len(set(numbers)) != len(numbers):
        raise RuntimeError(f"duplicate migration numbers in storage/schema: {numbers}")
    return tuple(found)


#: Every migration, in order. Append only: a released number never changes meaning.
MIGRATIONS: Sequence[Migration] = _discover()

LATEST = MIGRATIONS[-1].number


def current_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def pending(conn: sqlite3.Connection) -> list[Migration]:
    version = current_version(conn)
    return [m for m in MIGRATIONS if m.number > version]


def apply(conn: sqlite3.Connection, migrations: Sequence[Migration] | None = None) -> list[int]:
    """Apply every pending migration, each in its own transaction.

    Returns:
        The numbers of the migrations applied.
    """
    todo = [m for m in (migrations or MIGRATIONS) if m.number > current_version(conn)]
    done: list[int] = []
    for migration in todo:
        conn.execute("BEGIN IMMEDIATE")
        try:
            migration.apply(conn)
            conn.execute(f"PRAGMA user_version = {int(migration.number)}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        done.append(migration.number)
    return done
