"""Schema migrations, one module each: ``mNNN_<name>.py`` with ``NUMBER``, ``NAME`` and ``apply(conn)``.

Numbers are unique and never reused; storage/migrations.py discovers the modules and applies them in order.
"""

from __future__ import annotations

import sqlite3


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run a multi-statement script inside the caller's transaction.

    ``executescript`` would COMMIT first, which breaks the all-or-nothing migration.
    """
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in migration: {statement.strip()[:60]}")
