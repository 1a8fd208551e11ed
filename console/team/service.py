"""Team mode's two faces: ``TeamAdmin`` (join, init, host, invite, status, leave, backup: what ``care-console team``
and File → Team… share) and ``TeamService`` (the running team connection the runtime builds, docs/TEAM.md).

Every operation speaks in plain words when it fails (``TeamError`` or a ``StorageError``) and never puts the
password in a message, a log line, the settings or a ``repr``: it goes from the caller to the keyring (under
``config.password_key``) and from there to libpq's connection string only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from console.ports import Clock, SecretStore
from console.team.config import (
    TeamConfig,
    clear_config,
    forget_password,
    load_config,
    read_password,
    save_config,
    store_password,
)
from storage.errors import StorageError, TeamSchemaTooNew
from storage.settings import AGENT_NAME, SettingsRepo
from storage.team_local import MEMBER_UUID, PULLED_SEQ, PUSHED_EVENT_ID, PUSHED_MENTION_ID, TeamLocalRepo

if TYPE_CHECKING:
    from console.sla.engine import SlaEngine
    from console.team.claims import ClaimService, TeamSendGate
    from console.team.handover import HandoverService
    from console.team.host import HostInfo
    from console.team.leases import LeaseKeeper
    from console.team.replicator import Replicator, TeamChange, TeamStatus
    from console.team.supervisor import SupervisorView
    from storage.accounts import AccountRepo
    from storage.mentions import MentionRepo
    from storage.team.connect import TeamConnection, TeamDsn, TeamPool
    from storage.team.leases import LeaseRow

__all__ = ["Invitation", "TeamAdmin", "TeamError", "TeamReport", "TeamService", "build_team_service"]

log = logging.getLogger(__name__)

ROLES = ("agent", "supervisor")
#: ``team_state`` key: the id (``team_meta.team_id``) of the team this copy's cursor and watermarks belong to.
TEAM_ID = "team_id"


class TeamError(Exception):
    """A team operation that cannot be done as asked; the message says why and what to do, never a password."""


@dataclass(frozen=True, slots=True)
class Invitation:
    """A new member's one-time connection string (it holds the generated password: show it once, never log it)."""

    name: str
    role: str
    connection_string: str

    def __repr__(self) -> str:
        return f"Invitation(name={self.name!r}, role={self.role!r})"


@dataclass(frozen=True, slots=True)
class TeamReport:
    """What ``care-console team status`` prints: this copy's side and, when reachable, the server's."""

    config: TeamConfig
    server: str
    mode: str
    reason: str
    to_push: int
    conflicts: int
    pulled_seq: int
    #: Events on the server this copy has not pulled yet; None when the server cannot be reached.
    lag: int | None
    leases: tuple[LeaseRow, ...]
    online: tuple[str, ...]
    schema_version: int | None


class TeamAdmin:
    """Joining, hosting, inviting and leaving, for one data folder (its settings, keyring and local copy).

    The command line builds one per command; the window builds one per File → Team… dialog.
    """

    def __init__(
        self,
        data_dir: Path,
        settings: SettingsRepo,
        secrets: SecretStore,
        local: TeamLocalRepo,
        clock: Clock,
    ) -> None:
        self._data_dir = data_dir
        self._settings = settings
        self._secrets = secrets
        self._local = local
        self._clock = clock

    @property
    def config(self) -> TeamConfig | None:
        return load_config(self._settings)

    # -- joining -------------------------------------------------------------------------------------------------
    async def init(self, dsn: str, password: str | None, member: str = "") -> TeamConfig:
        """Create or migrate the team schema on ``dsn`` as its owner, register this copy, save the config.

        Raises:
            TeamSchemaTooNew: set up by a newer app (nothing changed).
            TeamUnavailable, TeamRefused, StorageError, TeamError: as said in their messages.
        """
        return await self._enter(dsn, password, member, create=True)

    async def join(self, dsn: str, password: str | None, member: str = "") -> TeamConfig:
        """Join the team on ``dsn`` (a ``team invite`` string): check the certificate when the string carries a
        fingerprint, connect, check the schema version, register this copy, save the config and the password.

        Raises:
            TeamSchemaTooNew: the team runs a newer app; update first.
            TeamUnavailable, TeamRefused, StorageError, TeamError: as said in their messages.
        """
        return await self._enter(dsn, password, member, create=False)

    async def _enter(self, text: str, password: str | None, member: str, *, create: bool) -> TeamConfig:
        from storage.team.connect import TeamDsn, password_in, pin_certificate
        from storage.team.members import MemberRepo
        from storage.team.migrations import SCHEMA_VERSION, migrate, schema_version, team_id

        try:
            dsn = TeamDsn.parse(text)
        except ValueError as exc:
            raise TeamError(f"Not a team database address: {exc}") from None
        password = password or password_in(text)
        if not password:
            raise TeamError("No password: give it when asked, with --password-stdin, or in the address.")
        if dsn.fingerprint and not dsn.sslrootcert and not dsn.is_loopback:
            dsn = await pin_certificate(dsn, self._data_dir)
        member_uuid = self._local.get_state(MEMBER_UUID) or str(uuid.uuid4())
        name = member.strip() or self._settings.get(AGENT_NAME).strip() or dsn.user
        conn = await _connect(dsn, password)
        try:
            if create:
                version = await migrate(conn, dsn.schema)
            else:
                found = await schema_version(conn, dsn.schema)
                if found is None:
                    raise TeamError(
                        f"There is no team database in schema {dsn.schema} on {dsn.server}: the team's owner sets it "
                        "up first (care-console team init, or team host)."
                    )
                if found > SCHEMA_VERSION:
                    raise TeamSchemaTooNew(found, SCHEMA_VERSION)
                if found < SCHEMA_VERSION:
                    raise TeamError(
                        f"The team database is older (schema {found}, this app uses {SCHEMA_VERSION}): the team's "
                        "owner runs care-console team init once to update it, then join again."
                    )
                version = found
            members = MemberRepo(conn, dsn.schema)
            if not create and not member.strip():
                name = await members.member_of_current_user() or name  # joining keeps the invited name
            membership = await members.register_self(name, "owner" if create else "agent", uuid.UUID(member_uuid))
            joined_team = await team_id(conn, dsn.schema)
        finally:
            await conn.close()
        log.info(
            "team: %s %s as %s (schema %s)", "set up" if create else "joined", dsn.display(), membership.name, version
        )
        config = TeamConfig(dsn=dsn.display(), member=membership.name, member_uuid=member_uuid, role=membership.role)
        store_password(self._secrets, dsn, password)
        self._local.set_state(MEMBER_UUID, member_uuid)
        self._start_from_scratch_if_another_team(joined_team)
        save_config(self._settings, config)
        if not self._settings.get(AGENT_NAME):
            self._settings.set(AGENT_NAME, membership.name)
        return config

    def _start_from_scratch_if_another_team(self, joined: str | None) -> None:
        """A copy that was in another team (left, then joined this one) reads this team's log from its start and
        pushes its whole queue to it: the old team's cursor and watermarks mean nothing here. Rejoining the same
        team keeps them."""
        previous = self._local.get_state(TEAM_ID)
        if joined is None or previous == joined:
            return
        marks = self._local.watermarks()
        if previous is not None or marks.pulled_seq or marks.pushed_event_id or marks.pushed_mention_id:
            log.info("team: this copy was in another team; reading this team's log from its start")
            with self._local.transaction():
                for key in (PULLED_SEQ, PUSHED_EVENT_ID, PUSHED_MENTION_ID):
                    self._local.set_state(key, "0")
        self._local.set_state(TEAM_ID, joined)

    async def host(self, member: str = "", *, port: int | None = None) -> HostInfo:
        """Start (or find running) the team server in this data folder and make this copy its owner member.

        Raises:
            HostError, EmbeddedServerError: the server could not start (their own words).
            StorageError, TeamError: as ``init``.
        """
        from console.team.host import host_password_key, start_host

        info = await asyncio.to_thread(start_host, self._data_dir, self._secrets, port=port)
        current = self.config
        if current is None or current.parsed().port != info.upstream or current.parsed().host != "127.0.0.1":
            password = self._secrets.get(host_password_key(info.upstream))
            await self.init(info.owner_dsn(), password, member)
        return info

    async def hosted(self) -> HostInfo | None:
        """The team server this data folder hosts, when it runs (``team status``, File → Team…)."""
        from console.team.host import hosted

        return await asyncio.to_thread(hosted, self._data_dir)

    # -- members -------------------------------------------------------------------------------------------------
    async def invite(self, name: str, role: str) -> Invitation:
        """Create member ``name`` with its own PostgreSQL login and a generated password (issue 23): returns the
        one-time connection string to hand over (with the certificate's fingerprint for a server hosted here).

        Raises:
            TeamError: not in a team, or a role other than agent/supervisor.
            TeamRefused: this login may not create members (only the owner does).
        """
        if role not in ROLES:
            raise TeamError(f"A member is an agent or a supervisor, not {role!r}.")
        config = self._require()
        from console.team.host import generate_password, hosted
        from storage.team.members import MemberRepo

        dsn = config.parsed()
        password = generate_password()
        conn = await _connect(dsn, self._password(dsn))
        try:
            invited = await MemberRepo(conn, dsn.schema).invite(name.strip(), role, password)
        except ValueError as exc:
            raise TeamError(f"Cannot invite {name!r}: {exc}.") from None
        finally:
            await conn.close()
        pg_role = invited.pg_role
        here = await asyncio.to_thread(hosted, self._data_dir)
        if here is not None and dsn.is_loopback and dsn.port == here.upstream:
            uri = here.join_uri(pg_role, password, schema=dsn.schema)
        else:
            # A pinned certificate is a file of this machine: the member pins its own from the fingerprint. A CA
            # (``system``, or a path every member has) is passed on as it is.
            shared = replace(dsn, user=pg_role, sslrootcert=None if dsn.fingerprint else dsn.sslrootcert)
            uri = _with_password(shared.display(), password)
        return Invitation(name.strip(), role, uri)

    # -- status --------------------------------------------------------------------------------------------------
    async def report(self) -> TeamReport:
        """This copy's team state, and the server's when it answers (mode "offline" and why when not).

        Raises:
            TeamError: this copy is not in a team.
        """
        from storage.team.events import TeamEventRepo
        from storage.team.leases import LeaseRepo
        from storage.team.members import MemberRepo
        from storage.team.migrations import schema_version

        config = self._require()
        dsn = config.parsed()
        pulled = self._local.watermarks().pulled_seq
        to_push, conflicts = self._local.to_push(), self._local.conflict_count(unseen_only=False)
        try:
            conn = await _connect(dsn, self._password(dsn))
        except StorageError as exc:
            return TeamReport(config, dsn.server, "offline", str(exc), to_push, conflicts, pulled, None, (), (), None)
        try:
            max_seq = await TeamEventRepo(conn, dsn.schema).max_seq()
            leases = tuple(sorted((await LeaseRepo(conn, dsn.schema).holders()).values(), key=lambda r: r.account_key))
            online = tuple(m.name for m in await MemberRepo(conn, dsn.schema).list() if m.online)
            version = await schema_version(conn, dsn.schema)
        finally:
            await conn.close()
        lag = max(0, max_seq - pulled)
        return TeamReport(config, dsn.server, "live", "", to_push, conflicts, pulled, lag, leases, online, version)

    async def online_members(self) -> Sequence[str]:
        """Members whose app was seen within 90 s (File → Team…'s status tab)."""
        report = await self.report()
        return report.online

    # -- leaving -------------------------------------------------------------------------------------------------
    def leave(self) -> TeamConfig | None:
        """Forget the team: config and password go, the local copy stays and works solo from the next start.

        Returns:
            The config that was forgotten, or None when this copy was solo.
        """
        config = self.config
        if config is None:
            return None
        with contextlib.suppress(ValueError):
            forget_password(self._secrets, config.parsed())
        clear_config(self._settings)
        log.info("team: left %s", config.dsn)
        return config

    # -- backup --------------------------------------------------------------------------------------------------
    async def backup(self, out: Path | None = None) -> Path:
        """``pg_dump -Fc`` of the team schema (of the server hosted here, or the team's server) into ``out``
        (default: ``care-console-team-<date>.dump`` in the current folder).

        Raises:
            TeamError: no team and no server hosted here.
            EmbeddedServerError: pg_dump failed (its own words, never the password).
        """
        from console.team.host import HOST_DB, HOST_SUPERUSER, backup_file_name, host_password_key, hosted
        from storage.team import server

        today = dt.datetime.fromtimestamp(self._clock.now()).date()
        target = out or Path.cwd() / backup_file_name(today)
        if target.is_dir():
            target = target / backup_file_name(today)
        config = self.config
        here = await asyncio.to_thread(hosted, self._data_dir)
        if config is not None:
            dsn = config.parsed()
            password = self._password(dsn)
            sslmode = dsn.sslmode or ("prefer" if dsn.is_loopback else "verify-full")
            if dsn.is_loopback and sslmode in ("verify-ca", "verify-full"):
                sslmode = "prefer"
            await asyncio.to_thread(
                server.dump, host=dsn.host, port=dsn.port, dbname=dsn.dbname, user=dsn.user, password=password,
                out=target, sslmode=sslmode, sslrootcert=dsn.sslrootcert, schema=dsn.schema,
            )  # fmt: skip
            return target
        if here is not None:
            password = self._secrets.get(host_password_key(here.upstream)) or ""
            await asyncio.to_thread(
                server.dump, host="127.0.0.1", port=here.upstream, dbname=HOST_DB, user=HOST_SUPERUSER,
                password=password, out=target, sslmode="disable",
            )  # fmt: skip
            return target
        raise TeamError("This copy is in no team and hosts no team server: nothing to back up.")

    # -- helpers -------------------------------------------------------------------------------------------------
    def _require(self) -> TeamConfig:
        config = self.config
        if config is None:
            raise TeamError("This copy works solo: join a team first (care-console team join, or team host).")
        return config

    def _password(self, dsn: TeamDsn) -> str:
        password = read_password(self._secrets, dsn)
        if not password:
            raise TeamError(
                f"The password for {dsn.user} on {dsn.server} is not in this machine's keyring: join again "
                "(care-console team join) to enter it."
            )
        return password


async def _connect(dsn: TeamDsn, password: str) -> TeamConnection:
    from storage.team.connect import connect

    return await connect(dsn, password)


def _with_password(uri: str, password: str) -> str:
    """``postgresql://user@…`` with ``:password`` after the user (percent-encoded)."""
    scheme, rest = uri.split("://", 1)
    user, tail = rest.split("@", 1)
    return f"{scheme}://{user}:{quote(password, safe='')}@{tail}"


#: How often this member's ``last_seen_at`` is refreshed (online = seen within 90 s).
HEARTBEAT_S = 30.0
#: How often the local copy is checked for own changes to push (the replicator is woken when there are).
LOCAL_CHANGES_S = 1.0


class TeamService:
    """The running team connection of one copy (``Runtime.team``; docs/TEAM.md "What the runtime and the window
    call"): the replicator, the claims, the poller leases, the send gate and the heartbeat.

    Built by ``build_team_service`` with everything wired and nothing connected; :meth:`start` starts the tasks,
    :meth:`aclose` stops them (idempotent). The window reads :meth:`status` and subscribes to changes.
    """

    def __init__(
        self,
        config: TeamConfig,
        *,
        db: TeamPool,
        replicator: Replicator,
        claims: ClaimService,
        leases: LeaseKeeper,
        send_gate: TeamSendGate,
        local: TeamLocalRepo,
        clock: Clock,
        heartbeat_s: float = HEARTBEAT_S,
        local_changes_s: float = LOCAL_CHANGES_S,
    ) -> None:
        self.config = config
        #: The app's pool on the team database (claims, leases, heartbeat; hand-over and supervisor views).
        self.db = db
        self.replicator = replicator
        self.claims = claims
        self.leases = leases
        self.send_gate = send_gate
        self._local = local
        self._clock = clock
        self._heartbeat_s = heartbeat_s
        self._local_changes_s = local_changes_s
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False
        self._closed = False
        replicator.on_mode(self._mode_changed)

    @property
    def member(self) -> str:
        return self.config.member

    @property
    def schema(self) -> str:
        return self.config.schema

    def status(self) -> TeamStatus:
        """The team line's facts (local reads only): mode, since when and why, changes to push, conflicts."""
        return self.replicator.status()

    def subscribe(self, listener: Callable[[TeamChange], None]) -> None:
        """Call ``listener`` (on the loop) when the team changed items (an applied page) or claims."""
        from console.team.replicator import TeamChange

        self.replicator.subscribe(listener)
        self.claims.subscribe(lambda ids: listener(TeamChange(claims=tuple(ids))))

    def wake(self) -> None:
        """A local change to share happened: push it soon (no await)."""
        self.replicator.wake()

    async def start(self) -> None:
        """Open the connections (in the background: a server that is down means "offline", never a hang) and
        start replicating, renewing claims, keeping leases and the heartbeat."""
        if self._started or self._closed:
            return
        self._started = True
        from storage.team.pool import start as start_pool

        await start_pool(self.db)
        if self.closed():
            return  # closed while the pool was starting
        self._spawn(self.replicator.run(), "team-replicator")
        self._spawn(self._release_left_claims(), "team-release-left-claims")
        self._spawn(self.claims.run(), "team-claims")
        self._spawn(self.leases.run(), "team-leases")
        self._spawn(self._heartbeat(), "team-heartbeat")
        self._spawn(self._watch_local(), "team-local-changes")

    async def aclose(self) -> None:
        """Stop the tasks, hand the leases back, close the connections and the applier's worker (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._started:
            with contextlib.suppress(Exception):
                await self.leases.aclose()
        with contextlib.suppress(Exception):
            await self.claims.aclose()
        with contextlib.suppress(Exception):
            await self.replicator.aclose()
        with contextlib.suppress(Exception):
            await self.db.close()

    def closed(self) -> bool:
        """True once :meth:`aclose` began (a start still under way then stops short)."""
        return self._closed

    def handover(self) -> HandoverService:
        """The hand-over at the end and start of a shift (issue 23), as this member on the app's pool.

        Built on demand (no I/O): the window's shift dialogs ask for it only in team mode.
        """
        from console.team.handover import HandoverService

        return HandoverService(self.db, self.member, self._clock, mention_ids=self._local.mention_ids)

    def supervisor(self) -> SupervisorView:
        """The live supervisor view's data and actions (issue 23), as this member (PostgreSQL decides the role)."""
        from console.team.supervisor import SupervisorView

        return SupervisorView(self.db, self.schema, self.member, self._clock, mention_ids=self._local.mention_ids)

    def _mode_changed(self, was: str, now: str) -> None:
        """The replicator reaches the server again (from offline, or connecting at start): replies the send gate
        held leave now rather than after the outbox's retry delay."""
        if was in ("offline", "connecting") and now in ("live", "polling"):
            self.send_gate.reopened()

    async def _release_left_claims(self) -> None:
        """Release the claims an earlier run of this member left (a crash, a lost "take next" answer): no composer
        of this run holds them, and they would block colleagues until they expire."""
        released = await self.claims.release_own()
        if released:
            log.info("team: released %d claim(s) left from an earlier session", released)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _heartbeat(self) -> None:
        from storage.team.members import MemberRepo

        members = MemberRepo(self.db, self.schema)
        while True:
            try:
                await members.heartbeat(self.member)
            except StorageError as exc:
                log.debug("team heartbeat: %s", exc)
            await asyncio.sleep(self._heartbeat_s)

    async def _watch_local(self) -> None:
        """Wake the replicator when the local copy has new events or messages (any feature's change: triage,
        notes, replies, surveys, shifts, a sync), so nothing waits for the replicator's safety interval."""
        seen: tuple[int, int] | None = None
        while True:
            try:
                now = (self._local.max_event_id(), self._local.max_mention_id())
            except StorageError as exc:
                log.debug("team: reading the local copy's changes failed: %s", exc)
            else:
                if seen is not None and now != seen:
                    self.replicator.wake()
                seen = now
            await asyncio.sleep(self._local_changes_s)


def build_team_service(
    config: TeamConfig,
    *,
    db: Any,
    db_path: Path,
    mentions: MentionRepo,
    accounts: AccountRepo,
    secrets: SecretStore,
    channel_secrets: SecretStore,
    clock: Clock,
    sla: SlaEngine,
) -> TeamService:
    """Wire the team service of ``open_runtime`` (no I/O on the team server: :meth:`TeamService.start` connects).

    Args:
        db: the app's SQLite database (``sqlite_utils.Database``): the team tables of the local copy.
        db_path: its file; the applier writes on a worker connection of its own.
        secrets: the keyring holding the team password.
        channel_secrets: where the channel tokens are (the lease keeper only checks one is there).
        sla: told what applied events mean for deadlines.

    Raises:
        ValueError: the saved DSN cannot be read. TeamRefused: its certificate was never pinned.
    """
    from console.team.applier import Applier
    from console.team.claims import ClaimService, TeamSendGate
    from console.team.leases import LeaseKeeper
    from console.team.replicator import Replicator
    from storage.team.claims import ClaimRepo
    from storage.team.connect import listen_connection, open_pool
    from storage.team.leases import LeaseRepo
    from storage.team.pool import open_later

    dsn = config.parsed()
    password = read_password(secrets, dsn)
    if password is None:
        log.warning("team: no password for %s on %s in the keyring; trying without one", dsn.user, dsn.server)
    local = TeamLocalRepo(db)
    if config.member_uuid and not local.get_state(MEMBER_UUID):
        local.set_state(MEMBER_UUID, config.member_uuid)
    pool = open_later(dsn, password)
    applier = Applier(mentions, db_path, member_uuid=config.member_uuid, plan_for=sla.planner, now=clock.now)

    async def replicator_pool() -> TeamPool:
        return await open_pool(dsn, password)

    async def listener() -> TeamConnection:
        return await listen_connection(dsn, password)

    replicator = Replicator(
        local=local, applier=applier, member=config.member, member_uuid=config.member_uuid, role=config.role,
        server=dsn.server, schema=dsn.schema, open_pool=replicator_pool, open_listener=listener, clock=clock,
        sla=sla, notify=config.notify == "auto",
    )  # fmt: skip

    def reachable() -> bool:
        return replicator.mode != "offline"

    claims = ClaimService(
        ClaimRepo(pool, dsn.schema), local, config.member, clock, catch_up=replicator.sync_once, reachable=reachable
    )
    gate = TeamSendGate(
        ClaimRepo(pool, dsn.schema), local, config.member, catch_up=replicator.sync_once, claims=claims,
        reachable=reachable,
    )  # fmt: skip
    leases = LeaseKeeper(LeaseRepo(pool, dsn.schema), accounts, channel_secrets, config.member, clock)
    return TeamService(
        config, db=pool, replicator=replicator, claims=claims, leases=leases, send_gate=gate, local=local, clock=clock
    )
