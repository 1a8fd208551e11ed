"""``care-console export``: a shift summary to a file (json, csv, xlsx, html or pdf), outside the window."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from console.ports import SystemClock
from console.reports.export.atomic import ExportError
from storage.db import DB_FILENAME, close_database, open_database
from storage.errors import StorageError
from storage.settings import SettingsRepo


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``export`` to the command line."""
    export = sub.add_parser("export", help="export a shift summary (json, csv, xlsx, html or pdf)")
    export.add_argument("--shift", default="last", help="shift id, or 'last' (default) for the most recent shift")
    export.add_argument("--format", choices=["json", "csv", "xlsx", "html", "pdf"], help="default: from -o's extension")
    export.add_argument("-o", "--output", type=Path, required=True, help="file to write")
    export.add_argument("--redact", action="store_true", help="leave out customer handles, names and links")


def run(args: argparse.Namespace, data_dir: Path) -> int:
    """Export one shift's summary; 0 when written, 1 when it could not be, 2 for a usage or database problem."""
    from console.reports.export.service import (  # here: main.py imports this module at app start
        ExportService,
        format_for,
    )

    path = data_dir / DB_FILENAME
    if not path.exists():
        print(f"There is no database at {path}: nothing to export.", file=sys.stderr)
        return 2
    try:
        fmt = format_for(args.output, args.format)
        shift_id = None if str(args.shift).lower() == "last" else int(args.shift)
    except ValueError:
        print(f"--shift takes a shift number or 'last', not {args.shift!r}.", file=sys.stderr)
        return 2
    except ExportError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    try:
        db = open_database(path, migrate=False)
    except StorageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    try:
        service = ExportService(path, SystemClock(), SettingsRepo(db))
        out = service.export(shift_id, fmt, args.output, redact=args.redact)
    except (ExportError, StorageError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    finally:
        close_database(db)
    print(f"exported {fmt.value} to {out}")
    return 0
