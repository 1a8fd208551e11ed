"""The one place where the SQLite driver's errors become the StorageError tree (STYLE B4).

Every repository class is decorated with :func:`repository`: each of its public methods turns a
``sqlite3.Error`` raised while it runs (a statement, a cursor read, a commit) into a :class:`StorageError`,
classified as storage/errors.py draws it:

    sqlite3.Error
     ├── full disk, read-only file or folder, I/O error, busy or locked  ->  DatabaseUnwritable
     ├── a damaged file (SQLITE_CORRUPT, SQLITE_NOTADB)                  ->  DatabaseCorrupt
     └── anything else (a closed connection, a constraint, a bad query)  ->  StorageError

The message is the method's own sentence (``@says("Could not queue the reply")``, or one derived from the
method's name) followed by the driver's words, e.g. "Could not queue the reply: database or disk is full".
A second storage backend maps its driver's errors here too, so callers only ever catch StorageError.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import shutil
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from storage.errors import DatabaseCorrupt, DatabaseUnwritable, StorageError

#: SQLite result codes (primary, the low byte) that mean "cannot write here now", not "the file is damaged".
UNWRITABLE_CODES = {
    sqlite3.SQLITE_FULL: "the disk is full",
    sqlite3.SQLITE_IOERR: "the disk refused a read or write (is it full or read-only?)",
    sqlite3.SQLITE_READONLY: "the file or its folder is read-only",
    sqlite3.SQLITE_CANTOPEN: "the file or its folder cannot be opened for writing",
    sqlite3.SQLITE_BUSY: "another program holds the database",
    sqlite3.SQLITE_LOCKED: "another program holds the database",
}

#: Result codes that mean the file itself is damaged.
CORRUPT_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})

#: Marks a method that already converts (``@says``), so that ``@repository`` leaves it as it is.
_CONVERTS = "__storage_converts__"

C = TypeVar("C", bound=type)
F = TypeVar("F", bound=Callable[..., Any])


def unwritable(exc: sqlite3.Error, path: Path, *, message: str | None = None) -> DatabaseUnwritable | None:
    """The clear error for a write that failed for lack of space or permission, or None for other errors.

    A full disk or a read-only folder must never be reported as a corrupt file: the advice for that (move
    the file aside) would hide everything stored so far.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return None
    reason = UNWRITABLE_CODES.get(code & 0xFF)
    if reason is None:
        return None
    if code & 0xFF == sqlite3.SQLITE_IOERR:
        with contextlib.suppress(OSError):
            if shutil.disk_usage(path.parent).free < 64 * 1024:
                reason = UNWRITABLE_CODES[sqlite3.SQLITE_FULL]
    return DatabaseUnwritable(path, reason, message=message)


def _file_of(conn: sqlite3.Connection | None) -> Path | None:
    """The main database file of ``conn``, or None (in memory, closed, or not answering)."""
    if conn is None:
        return None
    try:
        for _seq, name, file in conn.execute("PRAGMA database_list").fetchall():
            if name == "main" and file:
                return Path(file)
    except sqlite3.Error:
        return None
    return None


def translate(exc: sqlite3.Error, what: str, conn: sqlite3.Connection | None = None) -> StorageError:
    """The StorageError for a driver error raised while doing ``what`` on ``conn``.

    Args:
        exc: the driver's error.
        what: what was being done, as a sentence for the user ("Could not queue the reply").
        conn: the connection it happened on; its file names the database in the classified errors.

    Returns:
        DatabaseUnwritable or DatabaseCorrupt when the result code says so and the file is known, else a
        plain StorageError; the message is always ``"<what>: <driver's message>"``.
    """
    message = f"{what}: {exc}"
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        primary = code & 0xFF
        if primary in UNWRITABLE_CODES or primary in CORRUPT_CODES:
            path = _file_of(conn)
            if path is not None:
                if primary in CORRUPT_CODES:
                    return DatabaseCorrupt(path, str(exc), message=message)
                found = unwritable(exc, path, message=message)
                if found is not None:
                    return found
    return StorageError(message)


@contextlib.contextmanager
def converted(what: str, conn: sqlite3.Connection | None = None) -> Iterator[None]:
    """Inside the block a ``sqlite3.Error`` is raised as the StorageError ``translate`` gives."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate(exc, what, conn) from exc


class _Repository(Protocol):
    _conn: sqlite3.Connection


def _converting(method: F, what: str) -> F:
    @functools.wraps(method)
    def wrapper(self: _Repository, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise translate(exc, _sentence(method, what, self, args, kwargs), self._conn) from exc

    setattr(wrapper, _CONVERTS, True)
    return wrapper  # type: ignore[return-value]  # same signature, by functools.wraps


def _sentence(method: Callable[..., Any], what: str, *args_and_kwargs: Any) -> str:
    """``what`` with its ``{argument}`` fields filled from the call (only when an error is raised)."""
    if "{" not in what:
        return what
    self, args, kwargs = args_and_kwargs
    try:
        bound = inspect.signature(method).bind(self, *args, **kwargs)
        bound.apply_defaults()
        return what.format(**bound.arguments)
    except (TypeError, KeyError, AttributeError, IndexError, ValueError):
        return what


def says(what: str) -> Callable[[F], F]:
    """Method decorator: a driver error in this method reads ``"<what>: <driver's message>"``.

    ``what`` may name the method's arguments, formatted when an error is raised:
    ``@says("Could not score survey {survey_id}")``.
    """

    def decorate(method: F) -> F:
        return _converting(method, what)

    return decorate


def repository(cls: C) -> C:
    """Class decorator: every public method of ``cls`` raises StorageError, never a driver error.

    The class keeps its connection as ``self._conn``. Methods without ``@says`` get a sentence made from
    their name ("Could not mark sent (ReplyRepo)").
    """
    for name, attr in list(vars(cls).items()):
        if name.startswith("_") or not callable(attr) or getattr(attr, _CONVERTS, False):
            continue
        if isinstance(attr, staticmethod | classmethod | property):
            continue
        setattr(cls, name, _converting(attr, f"Could not {name.replace('_', ' ')} ({cls.__name__})"))
    return cls


def named(conn: sqlite3.Connection) -> sqlite3.Cursor:
    """A cursor on ``conn`` whose rows are read by column name (``row["due_at"]``), never by position.

    ``sqlite3.Row`` is the driver's own C row type: reading by name costs next to nothing over a tuple, and a
    reordered SELECT can no longer shift every field of a record by one.
    """
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row
    return cur


def scalar(conn: sqlite3.Connection, sql: str, params: Sequence[object] = ()) -> Any:
    """The one value a one-row, one-column query gives (a count, a max), or None when there is no row."""
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


#: At most this many ids go into one ``IN (...)`` list: far below SQLite's bound-variable limit, and each
#: statement stays short (STYLE B2).
IN_CHUNK = 500

_V = TypeVar("_V")


def chunked(values: Sequence[_V], size: int = IN_CHUNK) -> Iterator[Sequence[_V]]:
    """``values`` in consecutive slices of at most ``size``, in order (none for an empty sequence)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def qmarks(n: int) -> str:
    """``?,?,?``: the bound-parameter marks of an ``IN (...)`` list of ``n`` values."""
    return ",".join("?" * n)


def fetch_in(
    conn: sqlite3.Connection,
    sql: Callable[[str], str],
    ids: Iterable[object],
    *,
    before: Sequence[object] = (),
    after: Sequence[object] = (),
) -> Iterator[sqlite3.Row]:
    """The rows of one query over a list of ids of any length, read by column name, :data:`IN_CHUNK` ids at a time.

    ``sql(marks)`` is the statement for one chunk, with ``IN ({marks})`` where the ids go; its parameters are
    ``before``, the chunk's ids, then ``after``. Rows come chunk by chunk, each chunk in the statement's order.
    """
    for chunk in chunked(list(ids)):
        yield from named(conn).execute(sql(qmarks(len(chunk))), (*before, *chunk, *after))


def fetch_all(conn: sqlite3.Connection, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
    """Every row of ``sql``, read by column name."""
    return named(conn).execute(sql, params).fetchall()


def fetch_one(conn: sqlite3.Connection, sql: str, params: Sequence[object] = ()) -> sqlite3.Row | None:
    """The first row of ``sql``, read by column name, or None."""
    row: sqlite3.Row | None = named(conn).execute(sql, params).fetchone()
    return row
