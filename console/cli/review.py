"""``care-console review``: merge shift summaries (JSON) and print or export the merged report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from console.reports.export.atomic import ExportError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``review`` to the command line."""
    review = sub.add_parser("review", help="merge shift summaries (JSON) and print or export the merged report")
    review.add_argument("files", nargs="+", type=Path, help="summary JSON files")
    review.add_argument("-o", "--output", type=Path, help="write the merged report (.pdf, .html or .xlsx)")


def run(args: argparse.Namespace) -> int:
    """Print the merged report of the summaries given; 0 when at least one loaded and any output was written."""
    from console.reports.review import load_summaries, merge, write_review  # here: main.py imports this module at start

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
