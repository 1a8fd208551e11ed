"""One agent of the team soak: the app's own runtime, headless, taking and answering items until told to stop.

Run as ``python -m tests.team.agent_proc --data DIR --member NAME --dsn DSN --sandbox-url URL --token T``, the
member's password in ``TEAM_SOAK_PASSWORD``. The first start on an empty data folder joins the team and adds the
sandbox's brand account (the same account key on every agent); a restart on the same folder (after a SIGKILL)
carries on from what that folder holds, as the app does after a crash.

What runs is the app, not a re-implementation: ``open_runtime`` with the team configured (``Runtime.team``: the
replicator, lease keeper, claims and the outbox's send gate), the poller (only the lease holder polls the
sandbox) and the outbox sender. The loop is what a person does with "take next": take the most urgent unclaimed
item, write a reply, queue it, wait until it left (or the team said a colleague's reply came first), release.

Standard output, one JSON object a line: ``{"ready": pid}``, ``{"queued": mention_id}`` right before a reply is
queued (the soak SIGKILLs agents just after such a line: mid-send), ``{"sent": mention_id}``, ``{"quiet": {...}}``
and ``{"final": {...}}``. Standard input, one command a line: ``stop`` (take nothing more; finish what is queued
and pushed, then say ``quiet``), ``finish SEQ`` (wait until the copy holds the server's log up to SEQ and nothing
waits to go up, then say ``final`` and exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from console.ports import MemorySecretStore, SystemClock
from console.runtime import Runtime, open_runtime
from storage.accounts import AccountRepo
from storage.db import DB_FILENAME, close_database, open_database
from storage.rows import ReplyState
from storage.team_local import TeamLocalRepo

REPLY = "Hi {name}, thanks for writing. I'm on it and will get back to you here shortly. (#{n})"
#: How long one reply may take to leave before the agent moves on (it stays queued and leaves later).
SEND_PATIENCE = 20.0


def say(**message: Any) -> None:
    """One line for the soak; flushed, so a SIGKILL right after it loses nothing already said."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def first_start(data: Path, sandbox_url: str) -> int:
    """Add the sandbox's brand account on a new data folder (the same key on every agent); its local id."""
    data.mkdir(parents=True, exist_ok=True)
    db = open_database(data / DB_FILENAME)
    try:
        row = AccountRepo(db).add(kind="mastodon", handle="care", base_url=sandbox_url, now=int(time.time()))
        return row.id
    finally:
        close_database(db)


async def configure_team(data: Path, args: argparse.Namespace, secrets: MemorySecretStore) -> None:
    """Join the team on this data folder (settings keep the DSN without its password; the password goes to the
    secret store), as ``care-console team join`` does."""
    from tests.team import team_api

    await team_api.join(data, dsn=args.dsn, member=args.member, password=args.password, secrets=secrets)


class Agent:
    """The take-next loop over a running runtime."""

    def __init__(self, rt: Runtime, member: str, seed: int) -> None:
        self.rt = rt
        #: The team side of the local copy, on a connection of the agent's own (reads only).
        self.local_db = open_database(rt.db_path)
        self.local = TeamLocalRepo(self.local_db)
        self.member = member
        self.rng = random.Random(seed)
        self.stopping = asyncio.Event()
        self.counts = {"taken": 0, "queued": 0, "sent": 0, "refused": 0, "skipped": 0}

    async def work(self) -> None:
        team = self.rt.team
        assert team is not None, "the soak's agents run in team mode"
        outbox = self.rt.replies.outbox
        tidied = time.monotonic()
        while not self.stopping.is_set():
            try:
                mention_id = await team.claims.take_next()
            except Exception as exc:  # the app's own take-next failing is a soak failure worth a line, not a stop
                say(error=f"take_next: {exc!r}")
                mention_id = None
            if mention_id is None:
                if time.monotonic() - tidied > 2.0:
                    # Nothing to take: look at the list for items marked as ours that nobody is answering (a
                    # take whose answer was lost with the connection), and let them go, as the agent would.
                    tidied = time.monotonic()
                    with contextlib.suppress(Exception):
                        await self.release_stale()
                await asyncio.sleep(0.2)
                continue
            self.counts["taken"] += 1
            if outbox.replies(mention_id):
                # Our copy already holds a reply to it (queued before a crash, or refused because a colleague's
                # came first): keep the claim so take next moves on; the outbox finishes what is ours.
                self.counts["skipped"] += 1
                continue
            rows = self.rt.queue.rows_by_id([mention_id])
            row = rows.get(mention_id)
            name = "there" if row is None else (row.author_name or row.author_handle or "there").split()[0]
            say(queued=mention_id)
            reply_id = outbox.queue(mention_id, REPLY.format(name=name, n=mention_id))
            self.counts["queued"] += 1
            state = await self._wait_sent(reply_id)
            if state is ReplyState.SENT:
                self.counts["sent"] += 1
                say(sent=mention_id)
                team.claims.release(mention_id)  # as the composer does on send
            elif state is ReplyState.FAILED:
                # Refused: a colleague's answer was recorded first. The claim is kept until it expires, so that
                # take next hands out other items meanwhile (a person would close it and move on too).
                self.counts["refused"] += 1
                say(refused=mention_id)
            await asyncio.sleep(self.rng.uniform(0.0, 0.05))  # a person takes a breath between items

    async def release_held(self) -> None:
        """End of the shift: let go of every claim still held (items whose reply a colleague's beat), as closing
        the composers does, and wait until the releases are on the server: after this the member writes nothing
        more to the team log."""
        team = self.rt.team
        assert team is not None
        await team.claims.refresh()
        for row in self.local.claims():
            if row.holder == self.member and row.mention_id is not None:
                await team.claims.claim(row.mention_id)  # as in release_stale: open, then close
                team.claims.release(row.mention_id)
        await team.claims.settled()
        # And what the claim service still holds open (closing the app releases it): closed here, before the
        # soak reads the server's last seq, so no release lands on the log after the copies caught up.
        await team.claims.aclose()

    async def release_stale(self) -> int:
        """Release the claims this member holds on items it wrote nothing for: after a crash (the composers that
        were open died with the process), or a take whose answer the network lost; how many. Items with a reply
        keep theirs."""
        team = self.rt.team
        assert team is not None
        await team.claims.refresh()
        outbox = self.rt.replies.outbox
        stale = [
            row.mention_id
            for row in self.local.claims()
            if row.holder == self.member and row.mention_id is not None and not outbox.replies(row.mention_id)
        ]
        for mention_id in stale:
            # ClaimService.release lets go only of claims opened in this session: open the item (which claims it
            # again, ours) and close it, as the agent does in the window.
            await team.claims.claim(mention_id)
            team.claims.release(mention_id)
        await team.claims.settled()
        return len(stale)

    async def _wait_sent(self, reply_id: int) -> ReplyState | None:
        outbox = self.rt.replies.outbox
        deadline = time.monotonic() + SEND_PATIENCE
        while time.monotonic() < deadline:
            reply = outbox.reply(reply_id)
            if reply is not None and reply.state in (ReplyState.SENT, ReplyState.FAILED):
                return reply.state
            await asyncio.sleep(0.05)
        return None

    async def quiet(self) -> dict[str, Any]:
        """Wait until nothing of ours waits to leave: no reply queued or sending, no change waiting to go up."""
        team = self.rt.team
        assert team is not None
        told = time.monotonic()
        while True:
            status = team.status()
            waiting = self.rt.replies.outbox.waiting_count()
            if waiting == 0 and status.to_push == 0 and status.mode in ("live", "polling"):
                return {
                    "to_push": status.to_push,
                    "conflicts": status.conflicts,
                    "pulled_seq": self.local.watermarks().pulled_seq,
                    "counts": self.counts,
                }
            if time.monotonic() - told > 5:  # what it waits for, for the soak's failure message
                told = time.monotonic()
                say(waiting={"replies": waiting, "to_push": status.to_push, "mode": status.mode, "why": status.reason})
            await asyncio.sleep(0.1)

    async def finish(self, seq: int) -> dict[str, Any]:
        """Wait until this copy holds the server's log up to ``seq`` and has nothing to push; what it holds."""
        team = self.rt.team
        assert team is not None
        told = time.monotonic()
        while True:
            pulled = self.local.watermarks().pulled_seq
            status = team.status()
            if pulled >= seq and status.to_push == 0:
                return {
                    "member": self.member,
                    "pulled_seq": pulled,
                    "to_push": status.to_push,
                    "conflicts": status.conflicts,
                    "digest": self.local.digest(),
                    "applied": self.local.applied_count(),
                    "counts": self.counts,
                }
            if time.monotonic() - told > 5:
                told = time.monotonic()
                say(waiting={"pulled_seq": pulled, "of": seq, "to_push": status.to_push, "mode": status.mode})
            await asyncio.sleep(0.1)


def report_crash(task: asyncio.Task[None]) -> None:
    """A take-next loop that died says so on its output (the soak prints it), instead of idling silently."""
    if not task.cancelled() and task.exception() is not None:
        say(error=f"take-next loop: {task.exception()!r}")


async def run(args: argparse.Namespace) -> int:
    data = Path(args.data)
    fresh = not (data / DB_FILENAME).exists()
    account_id = first_start(data, args.sandbox_url)
    secrets = MemorySecretStore()  # lost at a SIGKILL: filled again at every start, as a keyring would keep them
    secrets.set(f"mastodon:{account_id}", args.token)
    if fresh or not (data / ".joined").exists():
        await configure_team(data, args, secrets)
        (data / ".joined").touch()
    else:
        from tests.team import team_api

        team_api.remember_password(args.dsn, args.password, secrets)
    rt = open_runtime(data, clock=SystemClock(), secrets=secrets, poll_seconds=args.poll_seconds)
    agent = Agent(rt, args.member, seed=args.seed)
    try:
        team = rt.team
        if team is None:
            say(error="open_runtime built no team service: is the team configured?")
            return 2
        await team.start()  # what start_polling starts too (idempotent): awaited here so "ready" means connected
        rt.start_polling()
        rt.start_sending()
        released = 0 if fresh else await agent.release_stale()
        say(ready=os.getpid(), restarted=not fresh, released=released)
        worker = asyncio.create_task(agent.work(), name="take-next")
        worker.add_done_callback(report_crash)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = (await reader.readline()).decode().strip()
            if not line:  # the soak went away: stop as a closed laptop would
                return 0
            command, _, rest = line.partition(" ")
            if command == "stop":
                agent.stopping.set()
                await worker
                await agent.release_held()
                say(quiet=await agent.quiet())
            elif command == "finish":
                say(final=await agent.finish(int(rest)))
                return 0
    finally:
        agent.stopping.set()
        team = rt.team
        if team is not None:
            await team.aclose()
        close_database(agent.local_db)
        await rt.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.team.agent_proc")
    parser.add_argument("--data", required=True)
    parser.add_argument("--member", required=True)
    parser.add_argument("--dsn", required=True, help="libpq connection string without the password")
    parser.add_argument("--sandbox-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--poll-seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    args.password = os.environ["TEAM_SOAK_PASSWORD"]  # the member's password: in the environment, not in ps
    logging.basicConfig(
        level=os.environ.get("TEAM_SOAK_LOG", "WARNING"),
        stream=sys.stderr,
        format=f"{args.member} %(asctime)s %(name)s %(levelname)s %(message)s",
    )
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
