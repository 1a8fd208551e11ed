"""The soak's one sandbox server, in a process of its own (as ``care-console sandbox`` runs), shared by every agent.

Run as ``python -m tests.team.sandbox_proc --total N --backlog B --per-second R --seed S``. It serves the
sandbox's Mastodon API on loopback, creates ``backlog`` mentions at once and the rest at ``per-second`` over the
run, each a new conversation (no thread, so "answered exactly once" is one brand post per mention). Its first line
on standard output is ``{"base_url", "token"}``. It then answers one JSON line per command line on standard input:

- ``status``: how many mentions exist and how many statuses the brand posted;
- ``posted``: per mention's status id, how many brand posts answer it (``replies``), the mentions' status ids
  (``mentions``), and brand posts that answer nothing of ours (``stray``);
- ``quit`` (or the end of standard input): stop.

Differences from ``care-console sandbox``, all for the soak: the rate limit is lifted (ten agents share one
token; the soak measures the team, not Mastodon's 300 requests per 5 minutes), every answer comes ``--delay``
seconds late (the sandbox's own ``slow`` fault, so a SIGKILL "mid-send" lands inside a request as often as around
one), and customers do not write back (no follow-ups: each mention needs exactly one reply).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections import Counter
from typing import Any

from console.sandbox import SandboxServer
from console.sandbox.faults import Fault, FaultRule


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.team.sandbox_proc")
    parser.add_argument("--total", type=int, required=True, help="mentions over the whole run")
    parser.add_argument("--backlog", type=int, default=0, help="mentions waiting at start")
    parser.add_argument("--per-second", type=float, default=20.0, help="new mentions per second after that")
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--delay", type=float, default=0.03, help="seconds every answer waits")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    faults = [FaultRule(Fault.SLOW, delay=args.delay)] if args.delay > 0 else []
    server = SandboxServer(port=args.port, seed=args.seed, rate_per_minute=0.0, backlog=0, faults=faults)
    server.set_rate_limit(10_000_000)
    world = server._world  # the soak reads the simulated world to know each mention's status id
    mention_ids: list[str] = []  # status ids of the customers' mentions, in creation order
    stop = threading.Event()

    def create(n: int) -> None:
        for _ in range(n):
            with world.lock:
                mention = world.traffic.next_mention()
                notification = server.post_mention(
                    author=mention.customer.acct, text=mention.text, display_name=mention.customer.display_name
                )
                mention_ids.append(world.notifications_by_id[notification].status.id)

    def feed() -> None:
        """The mentions after the backlog: ``per_second`` of them each second, in batches of a tenth second."""
        left = args.total - len(mention_ids)
        batch = max(1, round(args.per_second / 10))
        while left > 0 and not stop.wait(0.1):
            n = min(batch, left)
            create(n)
            left -= n

    with server:
        create(min(args.backlog, args.total))
        feeder = threading.Thread(target=feed, name="soak-feed", daemon=True)
        feeder.start()
        print(json.dumps({"base_url": server.base_url, "token": server.token}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "quit":
                break
            print(json.dumps(answer(command, server, mention_ids)), flush=True)
        stop.set()
        feeder.join(timeout=5)
    return 0


def answer(command: str, server: SandboxServer, mention_ids: list[str]) -> dict[str, Any]:
    """One command's answer (see the module docstring)."""
    posted = server.statuses_posted()
    if command == "status":
        return {"mentions": len(mention_ids), "posted": len(posted)}
    if command == "posted":
        ours = set(mention_ids)
        replies = Counter(str(p.get("in_reply_to_id")) for p in posted)
        stray = [p["id"] for p in posted if str(p.get("in_reply_to_id")) not in ours]
        return {
            "mentions": list(mention_ids),
            "replies": {m: replies.get(m, 0) for m in mention_ids},
            "stray": stray,
            "posted": len(posted),
        }
    return {"error": f"unknown command {command!r}"}


if __name__ == "__main__":
    raise SystemExit(main())
