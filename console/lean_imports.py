"""Imported first by main.py: two libraries load without optional parts the app never uses (start-up time).

httpx imports its command-line tool (click, rich, pygments: about 60 ms) and sqlite-utils imports numpy (about
120 ms, only to map numpy scalars to column types; the app stores none). Both treat the part as optional
(``except ImportError``), so it is hidden while the library loads. numpy stays importable afterwards: the PDF
charts' matplotlib imports it when a report is drawn.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def hidden(*names: str) -> Iterator[None]:
    """Inside the block ``import name`` raises ImportError; modules already imported are left as they are."""
    names = tuple(name for name in names if name not in sys.modules)
    for name in names:
        sys.modules[name] = None  # type: ignore[assignment]  # the import system's "not importable" mark
    try:
        yield
    finally:
        for name in names:
            if sys.modules.get(name, sys) is None:
                del sys.modules[name]


with hidden("httpx._main"):
    import httpx  # noqa: F401
with hidden("numpy"):
    import storage.db  # noqa: F401  # the first import of sqlite-utils
