"""A Care Console process for the crash tests: syncs, migrates or exports, and SIGKILLs itself at seeded random
points (any SQL statement, any HTTP request or response, any write of an export file, just before the rename).

Run as ``python -m tests.reliability.crash_worker MODE --db PATH --seed S --kill-p P [...]``; exit 0 when the
work is done, -9 (seen by the parent) when killed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import httpx

from console.channels.base import AccountRef
from console.channels.mastodon import MastodonConnector
from console.ports import MemorySecretStore
from console.sync.inbox import Poller
from storage.accounts import AccountRepo, SyncStateRepo
from storage.db import open_database
from storage.mentions import MentionRepo
from storage.settings import SettingsRepo


class FixedClock:
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


class Killer:
    def __init__(self, seed: int, probability: float) -> None:
        self._rng = random.Random(seed)
        self._p = probability

    def maybe_die(self, *_: object) -> None:
        if self._rng.random() < self._p:
            os.kill(os.getpid(), signal.SIGKILL)


def _arm_sql(killer: Killer) -> None:
    """Every connection the app opens may die at any statement, inside or outside a transaction.

    Armed at the driver's door (``sqlite3.connect``, which storage calls for each connection it opens), not
    inside storage: the worker process only lives to be killed, so nothing else shares the patch.
    """
    connect = sqlite3.connect

    def killing_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(killer.maybe_die)
        return conn

    sqlite3.connect = killing_connect  # type: ignore[assignment]


async def _sync(args: argparse.Namespace, killer: Killer) -> int:
    db = open_database(Path(args.db))
    clock = FixedClock(args.now)
    hooks: dict[str, list[Any]] = {"request": [_async(killer)], "response": [_async(killer)]}
    async with httpx.AsyncClient(timeout=10.0, trust_env=False, event_hooks=hooks) as client:
        secrets = MemorySecretStore()
        secrets.set(f"mastodon:{args.account_id}", args.token)
        ref = AccountRef(args.account_id, "mastodon", "care", args.base_url)
        connector = MastodonConnector(client, account=ref, secrets=secrets, clock=clock)
        poller = Poller(MentionRepo(db), AccountRepo(db), SyncStateRepo(db), {args.account_id: connector}, clock)
        for _ in range(50):
            (report,) = await poller.sync_once()
            if report.ok and report.fetched == 0:
                return 0
    return 3


def _async(killer: Killer) -> Any:
    async def hook(_: object) -> None:
        killer.maybe_die()

    return hook


def _export(args: argparse.Namespace, killer: Killer) -> int:
    from console.reports.export.service import ExportService, format_for  # charts and PDF: only this mode loads them

    out = Path(args.out)
    real_fdopen, real_replace = os.fdopen, os.replace

    class KillingStream:
        def __init__(self, stream: Any) -> None:
            self._stream = stream

        def write(self, data: Any) -> Any:
            killer.maybe_die()
            return self._stream.write(data)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._stream, name)

        def __enter__(self) -> KillingStream:
            return self

        def __exit__(self, *exc: object) -> None:
            self._stream.__exit__(*exc)

    def fdopen(fd: int, *a: Any, **kw: Any) -> Any:
        return KillingStream(real_fdopen(fd, *a, **kw))

    def replace(src: Any, dst: Any) -> None:
        killer.maybe_die()
        real_replace(src, dst)
        killer.maybe_die()

    os.fdopen = fdopen  # type: ignore[assignment]
    os.replace = replace
    db = open_database(Path(args.db), migrate=False)
    service = ExportService(Path(args.db), FixedClock(args.now), SettingsRepo(db))
    service.export(None, format_for(out), out)
    service.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["sync", "migrate", "export"])
    parser.add_argument("--db", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--kill-p", type=float, default=0.0)
    parser.add_argument("--now", type=float, default=1_800_000_000.0)
    parser.add_argument("--base-url", default="")
    parser.add_argument("--token", default="")
    parser.add_argument("--account-id", type=int, default=0)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    killer = Killer(args.seed, args.kill_p)
    _arm_sql(killer)
    if args.mode == "sync":
        return asyncio.run(_sync(args, killer))
    if args.mode == "migrate":
        open_database(Path(args.db)).conn.close()
        return 0
    return _export(args, killer)


if __name__ == "__main__":
    sys.exit(main())
