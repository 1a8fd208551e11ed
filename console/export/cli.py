"""The ``export`` and ``review`` commands (wired into main.py's argument parser)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from console.export.atomic import ExportError
from console.ports import SystemClock
from storage.db import DB_FILENAME, open_database
from storage.errors import StorageError
from storage.settings import SettingsRepo


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``export`` and ``review`` to the command line."""
    export = sub.add_parser("export", help="export a shift summary (json, csv, xlsx, html or pdf)")
    export.add_argument("--shift", default="last", help="shift id, or 'last' (default) for the most recent shift")
    export.add_argument("--format", choices=["json", "csv", "xlsx", "html", "pdf"], help="default: from -o's extension")
    export.add_argument("-o", "--output", type=Path, required=True, help="file to write")
    export.add_argument("--redact", action="store_true", help="leave out customer handles, names and links")
    review = sub.add_parser("review", help="merge shift summaries (JSON) and print or export the merged report")
    review.add_argument("files", nargs="+", type=Path, help="summary JSON files")
    review.add_argument("-o", "--output", type=Path, help="write the merged report (.pdf, .html or .xlsx)")


def cmd_export(args: argparse.Namespace, data_dir: Path) -> int:
    from console.export.service import ExportService, format_for  # here: main.py imports this module at app start

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
        db.conn.close()
    print(f"exported {fmt.value} to {out}")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from console.review import load_summaries, merge, write_review  # here: main.py imports this module at start

    review = load_summaries(args.files)
    for problem in review.problems:
        print(f"not loaded: {problem.message}", file=sys.stderr)
    for duplicate in review.duplicates:
        print(f"skipped: {duplicate}", file=sys.stderr)
    if not review.summaries:
        print("No summary could be loaded.", file=sys.stderr)
        return 1
    merged = merge(review)
    print(f"{'agent':<20} {'shifts':>6} {'received':>9} {'handled':>8} {'resolved':>9} {'SLA met':>8} {'Net Easy':>9}")
    for g in [*merged.agents, merged.total]:
        sla = "–" if g.sla_pct is None else f"{g.sla_pct:.0f}%"
        ne = "–" if g.net_easy.score is None else f"{g.net_easy.score:+.0f} n={g.net_easy.n}"
        print(f"{g.label:<20} {g.shifts:>6} {g.received:>9} {g.handled:>8} {g.resolved:>9} {sla:>8} {ne:>9}")
    print(f"breaches: {len(merged.breaches)} · open hand-overs: {len(merged.handovers)}")
    if args.output is not None:
        try:
            out = write_review(review, args.output)
        except ExportError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        print(f"wrote the merged report to {out}")
    return 0
