"""The team soak's machinery: a dedicated PostgreSQL, the proxy, the sandbox process, the agent processes, the
faults, and the checks after it (issue 22, "Proof").

``make test`` runs a bounded soak (ten agents, a few hundred mentions, faults for some seconds); ``make soak``
sets ``TEAM_SOAK_*`` for the long one (thousands of mentions, agents cut off for minutes). See :class:`SoakPlan`.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.team import team_api
from tests.team.pgproxy import PgProxy
from tests.team.pgserver import EmbeddedServer, StopMode

ROOT = Path(__file__).resolve().parents[2]

#: Problems the soak finds in the app that are reported and waiting for their fix (a part of the message each):
#: the test then skips, saying so, instead of failing; any other problem fails it. Empty when all is well.
KNOWN_PROBLEMS: tuple[str, ...] = ()


def _env(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    return float(raw) if raw.strip() else default


@dataclass(frozen=True)
class SoakPlan:
    """How big and how rough a soak is; ``from_env`` reads ``TEAM_SOAK_*`` (``make soak`` sets them)."""

    agents: int = 10
    mentions: int = 250
    #: Mentions waiting when the agents start; the rest arrive at ``per_second``.
    backlog: int = 100
    per_second: float = 12.0
    #: Faults are injected during the first ``chaos_seconds`` of the run, one every ``fault_every`` seconds.
    chaos_seconds: float = 18.0
    fault_every: float = 1.5
    #: How long an agent stays cut off (seconds, drawn between the two).
    cut_seconds: tuple[float, float] = (2.0, 5.0)
    #: PostgreSQL restarts during the chaos (fast and immediate alternate), each down this long.
    pg_restarts: int = 2
    pg_down_seconds: float = 1.0
    #: A guard against a hang, not a budget: the bounded run takes about a minute on a quiet 2-core machine.
    deadline: float = 240.0
    seed: int = 22

    @classmethod
    def from_env(cls) -> SoakPlan:
        """The bounded plan, or the long one: ``TEAM_SOAK_MINUTES`` of faults with ``TEAM_SOAK_MENTIONS`` mentions,
        a third waiting at the start and the rest arriving over the first three quarters of the faults."""
        base = cls()
        minutes = _env("TEAM_SOAK_MINUTES", 0.0)
        chaos = minutes * 60 if minutes else base.chaos_seconds
        mentions = int(_env("TEAM_SOAK_MENTIONS", base.mentions))
        backlog = int(_env("TEAM_SOAK_BACKLOG", base.backlog if not minutes else mentions // 3))
        spread = max(1.0, (mentions - backlog) / (chaos * 0.75)) if minutes else base.per_second
        cut_max = _env("TEAM_SOAK_CUT_SECONDS", base.cut_seconds[1])
        return cls(
            agents=int(_env("TEAM_SOAK_AGENTS", base.agents)),
            mentions=mentions,
            backlog=backlog,
            per_second=_env("TEAM_SOAK_PER_SECOND", spread),
            chaos_seconds=chaos,
            fault_every=_env("TEAM_SOAK_FAULT_EVERY", base.fault_every if not minutes else 5.0),
            cut_seconds=(min(base.cut_seconds[0], cut_max) if not minutes else cut_max / 2, cut_max),
            pg_restarts=int(_env("TEAM_SOAK_PG_RESTARTS", base.pg_restarts if not minutes else max(2, int(minutes)))),
            pg_down_seconds=_env("TEAM_SOAK_PG_DOWN_SECONDS", base.pg_down_seconds if not minutes else 5.0),
            # The long run's last cut ends at most cut_max after the faults; a reconnect backs off up to a minute.
            deadline=_env("TEAM_SOAK_DEADLINE", base.deadline if not minutes else chaos + cut_max + 180.0),
            seed=int(_env("TEAM_SOAK_SEED", base.seed)),
        )


@dataclass
class Tally:
    """What the soak did to the team, for the report line."""

    faults: Counter[str] = field(default_factory=Counter)
    log: list[str] = field(default_factory=list)

    def add(self, kind: str, what: str, started: float) -> None:
        self.faults[kind] += 1
        self.log.append(f"{time.monotonic() - started:6.1f}s {kind}: {what}")


class Lines:
    """A child's standard output read on a thread: JSON lines in a queue, everything kept for a failure message."""

    def __init__(
        self,
        stream: Any,
        on_line: Callable[[dict[str, Any]], None] | None = None,
        proc: subprocess.Popen[str] | None = None,
    ) -> None:
        self.proc = proc
        self.items: queue.Queue[dict[str, Any]] = queue.Queue()
        self.raw: list[str] = []
        self._on_line = on_line
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.raw.append(line.rstrip())
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                if self._on_line is not None:
                    self._on_line(item)
                self.items.put(item)

    def join(self, timeout: float = 5.0) -> None:
        """Wait until the output has been read to its end."""
        self._thread.join(timeout)

    def expect(self, key: str, timeout: float) -> Any:
        """The value of the next line holding ``key`` (other lines are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {key!r} line within {timeout} s; last lines: {self.raw[-10:]}")
            try:
                item = self.items.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.proc is not None and self.proc.poll() is not None and self.items.empty():
                    ended = self.proc.returncode
                    raise AssertionError(
                        f"the process ended ({ended}) before saying {key!r}; last lines: {self.raw[-10:]}"
                    ) from None
                continue
            if "error" in item:
                self.raw.append(f"(error line) {item['error']}")
            if key in item:
                return item[key]


class SandboxProc:
    """The shared sandbox server process (``tests/team/sandbox_proc.py``)."""

    def __init__(self, plan: SoakPlan, log: Path) -> None:
        self._stderr = log.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "tests.team.sandbox_proc", "--total", str(plan.mentions),
                "--backlog", str(plan.backlog), "--per-second", str(plan.per_second), "--seed", str(plan.seed),
            ],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, cwd=ROOT, text=True, bufsize=1,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self._lock = threading.Lock()
        first = json.loads(self.proc.stdout.readline())
        self.base_url: str = first["base_url"]
        self.token: str = first["token"]

    def ask(self, command: str) -> dict[str, Any]:
        with self._lock:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
            answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
            return answer

    def close(self) -> None:
        with suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            with suppress(OSError, ValueError):
                if pipe is not None:
                    pipe.close()
        self._stderr.close()


class AgentProc:
    """One agent process (``tests/team/agent_proc.py``) on its data folder; killed and started again at will."""

    def __init__(self, soak: Soak, index: int, member: team_api.Member) -> None:
        self.soak = soak
        self.index = index
        self.member = member
        self.name = member.name
        self.data = soak.folder / "agents" / self.name
        self.port = soak.proxy.route(self.name)
        self.proc: subprocess.Popen[str] | None = None
        self.lines: Lines | None = None
        self.starts = 0
        #: Set by the reader thread when the agent says it is about to queue a reply (the soak kills then).
        self.queued = threading.Event()

    def _on_line(self, item: dict[str, Any]) -> None:
        if "queued" in item:
            self.queued.set()

    def start(self) -> None:
        self.starts += 1
        log = (self.soak.folder / "logs" / f"{self.name}.{self.starts}.log").open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "tests.team.agent_proc", "--data", str(self.data), "--member", self.name,
                "--dsn", team_api.member_dsn(self.port, self.member, self.soak.schema),
                "--sandbox-url", self.soak.sandbox.base_url,
                "--token", self.soak.sandbox.token, "--seed", str(self.seed()),
            ],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=ROOT, text=True, bufsize=1,
            env={**os.environ, "TEAM_SOAK_PASSWORD": self.member.password},  # not on the command line
        )  # fmt: skip
        log.close()
        self.queued.clear()
        self.lines = Lines(self.proc.stdout, self._on_line, self.proc)

    def seed(self) -> int:
        """A seed per agent and start: a restarted agent does not repeat its pauses."""
        return self.soak.plan.seed * 1000 + self.index * 10 + self.starts

    def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.lines is not None
        self.lines.expect("ready", timeout)

    def send(self, command: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        """SIGKILL: no goodbye, no flush, no cleanup."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        """Our ends of the pipes of an ended process (its reader thread sees the end of its output first)."""
        if self.proc is None:
            return
        for pipe in (self.proc.stdin, self.proc.stdout):
            with suppress(OSError, ValueError):
                if pipe is not None:
                    pipe.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr_tail(self, lines: int = 30) -> str:
        path = self.soak.folder / "logs" / f"{self.name}.{self.starts}.log"
        with suppress(OSError):
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def close(self) -> None:
        if self.proc is None:
            return
        with suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
        if self.lines is not None:
            self.lines.join()
        self._close_pipes()


class Soak:
    """Everything one soak run owns; ``run`` does the work and the faults, ``check`` the proof."""

    def __init__(self, plan: SoakPlan, folder: Path) -> None:
        self.plan = plan
        self.folder = folder
        self.rng = random.Random(plan.seed)
        self.tally = Tally()
        (folder / "logs").mkdir(parents=True, exist_ok=True)
        (folder / "agents").mkdir(parents=True, exist_ok=True)
        self.server = EmbeddedServer(folder / "pg", max_connections=max(100, plan.agents * 12))
        self.schema = "care_soak"
        self.proxy: PgProxy
        self.sandbox: SandboxProc
        self.agents: list[AgentProc] = []
        self.started = time.monotonic()
        #: Seconds each phase took: start (server, team, sandbox, agents), run (work and faults), settle.
        self.phases: dict[str, float] = {}
        #: (seconds into the run, brand posts on the sandbox), sampled each second.
        self.progress: list[tuple[float, int]] = []
        #: Faults under way, by agent name: cut off until, kill armed since, killed and to start again at.
        self.cuts: dict[str, float] = {}
        self.armed: dict[str, float] = {}
        self.down: dict[str, float] = {}
        self.by_name: dict[str, AgentProc] = {}

    # ------------------------------------------------------------------ set-up and tear-down
    @contextmanager
    def running(self) -> Iterator[Soak]:
        self.server.start()
        self.proxy = PgProxy(self.server.port)
        try:
            names = [f"agent{i:02d}" for i in range(self.plan.agents)]
            members = team_api.init_team(self.folder / "owner", self.server.port, self.schema, names)
            self.sandbox = SandboxProc(self.plan, self.folder / "logs" / "sandbox.log")
            try:
                self.agents = [AgentProc(self, i, m) for i, m in enumerate(members)]
                self.by_name = {agent.name: agent for agent in self.agents}
                for agent in self.agents:
                    agent.start()
                for agent in self.agents:
                    agent.wait_ready()
                self.phases["start"] = round(time.monotonic() - self.started, 1)
                self.started = time.monotonic()
                yield self
            finally:
                for agent in self.agents:
                    agent.kill()
                self.sandbox.close()
        finally:
            self.proxy.close()
            self.server.stop("immediate")

    # ------------------------------------------------------------------ the run
    def answered_on_server(self) -> int:
        """Items answered on the team server (a failed read during a restart counts as no news: -1)."""
        try:
            return team_api.answered_items(self.server.conninfo, self.schema)
        except psycopg.Error:
            return -1

    def run(self) -> None:
        """Let the agents work while faults are injected; return when every mention is answered on the sandbox.

        Nothing here waits on one agent: a kill is armed and fires when the agent says it queues a reply (or after
        three seconds), and the restart follows a moment later, while the other faults go on.
        """
        plan = self.plan
        restarts_at = sorted(self.rng.uniform(0.2, 0.9) * plan.chaos_seconds for _ in range(plan.pg_restarts))
        next_fault = plan.fault_every
        kinds = ["terminate", "terminate_all", "cut", "cut_silent", "kill"]
        sampled = 0.0
        while True:
            now = time.monotonic() - self.started
            if now - sampled >= 1.0:
                sampled = now
                self.progress.append((round(now, 1), int(self.sandbox.ask("status")["posted"])))
            self._due(now)
            if restarts_at and now >= restarts_at[0]:
                restarts_at.pop(0)
                mode: StopMode = "immediate" if self.tally.faults["pg_restart"] % 2 else "fast"
                self.server.restart(mode, down_for=plan.pg_down_seconds)
                self.tally.add("pg_restart", mode, self.started)
            elif now < plan.chaos_seconds and now >= next_fault:
                next_fault += plan.fault_every
                self._fault(self.rng.choice(kinds), now)
            if now >= plan.chaos_seconds and not (self.cuts or self.armed or self.down):
                status = self.sandbox.ask("status")
                if status["mentions"] >= plan.mentions and status["posted"] >= plan.mentions:
                    self.phases["run"] = round(now, 1)
                    return
            if now > plan.deadline:  # a hang guard, not a timing: the bounded run ends far sooner
                status = self.sandbox.ask("status")
                raise AssertionError(
                    f"not done within {plan.deadline:.0f} s: {status['posted']} posts for {status['mentions']} "
                    f"mentions; answered on the server: {self.answered_on_server()}\n" + self.report()
                )
            for agent in self.agents:
                if agent.name not in self.down and not agent.alive():
                    code = agent.proc.returncode if agent.proc else "?"
                    raise AssertionError(f"{agent.name} exited by itself ({code}):\n" + agent.stderr_tail())
            time.sleep(0.02)

    def _due(self, now: float) -> None:
        """The faults' second halves that are due: restore a cut agent, fire an armed kill, restart a killed one."""
        for name, until in list(self.cuts.items()):
            if now >= until:
                self.proxy.restore(name)
                del self.cuts[name]
                self.tally.add("restore", name, self.started)
        for name, since in list(self.armed.items()):
            agent = self.by_name[name]
            mid_send = agent.queued.is_set()
            if mid_send or now - since > 3.0:
                if mid_send:  # it is about to queue a reply: let it get a little way into the send
                    time.sleep(self.rng.uniform(0.0, 0.08))
                agent.kill()
                del self.armed[name]
                self.down[name] = now + self.rng.uniform(0.2, 1.0)
                self.tally.add("kill", f"{name} {'mid-send' if mid_send else 'idle'}", self.started)
        for name, at in list(self.down.items()):
            if now >= at:
                self.by_name[name].start()
                del self.down[name]

    def _fault(self, kind: str, now: float) -> None:
        agent = self.rng.choice(self.agents)
        busy = agent.name in self.cuts or agent.name in self.armed or agent.name in self.down
        if kind == "terminate":
            n = self.server.terminate(team_api.role_pattern(agent.member))
            self.tally.add(kind, f"{agent.name} ({n} connections)", self.started)
        elif kind == "terminate_all":
            n = self.server.terminate(team_api.role_pattern(None, self.schema))
            self.tally.add(kind, f"{n} connections", self.started)
        elif kind in ("cut", "cut_silent") and not busy and len(self.cuts) < len(self.agents) // 2:
            self.proxy.cut(agent.name, "silent" if kind == "cut_silent" else "reset")
            self.cuts[agent.name] = now + self.rng.uniform(*self.plan.cut_seconds)
            self.tally.add(kind, f"{agent.name} until {self.cuts[agent.name]:.1f}s", self.started)
        elif kind == "kill" and not busy:
            agent.queued.clear()
            self.armed[agent.name] = now

    # ------------------------------------------------------------------ after it: the proof
    def settle(self) -> list[dict[str, Any]]:
        """Stop every agent, let each push what it holds, then let each catch up with the whole log; their finals."""
        for agent in self.agents:
            agent.send("stop")
        for agent in self.agents:
            assert agent.lines is not None
            agent.lines.expect("quiet", 60.0)
        seq = team_api.max_seq(self.server.conninfo, self.schema)
        for agent in self.agents:
            agent.send(f"finish {seq}")
        finals = []
        for agent in self.agents:
            assert agent.lines is not None
            finals.append(agent.lines.expect("final", 60.0))
        for agent in self.agents:
            agent.close()
        self.phases["settle"] = round(time.monotonic() - self.started - self.phases.get("run", 0.0), 1)
        return finals

    def check(self, finals: list[dict[str, Any]]) -> dict[str, Any]:
        """The proof: every mention answered exactly once on the sandbox, no event lost, every copy equal to the
        server's. Returns the figures; raises AssertionError listing everything that differs."""
        problems: list[str] = []

        def expect(ok: bool, problem: str) -> None:
            if not ok:
                problems.append(problem)

        posted = self.sandbox.ask("posted")
        mentions: list[str] = posted["mentions"]
        replies: dict[str, int] = posted["replies"]
        n = len(mentions)
        expect(n == self.plan.mentions, f"the sandbox made {n} mentions of {self.plan.mentions}")
        unanswered = [m for m, count in replies.items() if count == 0]
        twice = {m: count for m, count in replies.items() if count > 1}
        expect(not unanswered, f"{len(unanswered)} mentions never answered on the sandbox: {unanswered[:10]}")
        expect(not twice, f"{len(twice)} mentions answered more than once on the sandbox: {sorted(twice.items())[:10]}")
        expect(not posted["stray"], f"brand posts answering no mention: {posted['stray'][:10]}")
        server = team_api.server_figures(self.server.conninfo, self.schema)
        expect(server["items"] == n, f"items on the server: {server['items']} for {n} mentions")
        expect(server["answered"] == n, f"answered on the server: {server['answered']} of {n}")
        expect(server["mention_events"] == n, f"mention events on the server: {server['mention_events']} for {n}")
        for final in finals:
            who = final["member"]
            expect(final["to_push"] == 0, f"{who} still holds changes to push: {final}")
            held = final["applied"]
            expect(held == server["events"], f"{who} holds {held} team events of {server['events']}")
            expect(
                tuple(final["digest"]) == server["digest"],
                f"{who}'s event log differs from the server's: {final['digest']} != {server['digest']}",
            )
        for agent in self.agents:
            local = team_api.local_figures(agent.data)
            who = agent.name
            expect(local["uid_digest"] == server["digest"], f"{who}: the uids it holds differ from the server's")
            expect(local["digest"] == server["digest"], f"{who}: TeamLocalRepo.digest() differs (reopened)")
            expect(local["mentions"] == n, f"{who} holds {local['mentions']} mentions of {n}")
            expect(local["sent_posts"] == n, f"{who} knows {local['sent_posts']} brand posts of {n}")
            expect(
                not local["doubled_replies"],
                f"{who} holds one brand post as several sent replies ({len(local['doubled_replies'])} posts): "
                f"{local['doubled_replies'][:3]}",
            )
        figures = {
            "agents": len(self.agents),
            "mentions": n,
            "events": server["events"],
            "kinds": server["kinds"],
            "seconds": round(time.monotonic() - self.started, 1),
            "faults": dict(self.tally.faults),
            "restarts": sum(a.starts - 1 for a in self.agents),
            "phases": self.phases,
            "posted_by_second": self.milestones(),
        }
        (self.folder / "figures.json").write_text(json.dumps({**figures, "problems": problems}, indent=2))
        unexpected = [p for p in problems if not any(k in p for k in KNOWN_PROBLEMS)]
        assert not unexpected, "the team soak found:\n- " + "\n- ".join(problems) + f"\n{figures}"
        figures["known_problems"] = problems
        return figures

    def milestones(self) -> dict[str, float]:
        """When half, nine tenths and all of the mentions had their answer on the sandbox (seconds into the run)."""
        out: dict[str, float] = {}
        for label, share in (("50%", 0.5), ("90%", 0.9), ("100%", 1.0)):
            reached = [t for t, posted in self.progress if posted >= share * self.plan.mentions]
            if reached:
                out[label] = reached[0]
        return out

    def report(self) -> str:
        lines = [f"faults: {dict(self.tally.faults)}", *self.tally.log[-40:]]
        for agent in self.agents:
            lines.append(f"--- {agent.name} (start {agent.starts}) stderr:\n{agent.stderr_tail(15)}")
        lines.append(f"--- postgres:\n{self.server.log_tail(15)}")
        return "\n".join(lines)
