"""``care-console sandbox``: the sandbox Mastodon server alone, on loopback, until interrupted."""

from __future__ import annotations

import argparse

from console.cli.common import EXIT_OK
from console.sandbox.faults import FAULT_HELP


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sandbox`` to the command line."""
    sandbox = sub.add_parser("sandbox", help="run the sandbox Mastodon server alone")
    sandbox.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    sandbox.add_argument("--seed", type=int, default=1)
    sandbox.add_argument("--rate", type=float, default=6.0, help="new mentions per minute")
    sandbox.add_argument("--backlog", type=int, default=12, help="mentions already waiting at start")
    sandbox.add_argument("--faults", default="", help=f"fault switches on from the start: {FAULT_HELP}")
    sandbox.add_argument("--fault-seed", type=int, help="seed of the faults' random draws (default: --seed)")


def run(args: argparse.Namespace) -> int:
    from console.sandbox.faults import parse_fault_spec
    from console.sandbox.server import run_standalone

    try:
        faults = parse_fault_spec(args.faults)
    except ValueError as exc:
        raise SystemExit(f"--faults: {exc}") from exc
    run_standalone(
        port=args.port,
        seed=args.seed,
        rate_per_minute=args.rate,
        backlog=args.backlog,
        faults=faults,
        fault_seed=args.fault_seed,
    )
    return EXIT_OK
