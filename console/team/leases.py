"""Poller leases (issue 22 item 3): one member's machine polls a channel account at a time, the poller's PollGate.

Every member whose keyring holds an account's token competes for that account's lease on the team server
(``leases``: one row per account key, on the server's clock); the holder renews it every ``ttl / 3``, so when it
goes away (closed, crashed, cut off) another member's machine takes the account over within about a minute.
Tokens never leave the keyring: the server only learns who polls what. The poller asks :meth:`LeaseKeeper.may_poll`
before each poll and skips the accounts another machine polls (their health line says whose).

Cut off from the team server, this machine cannot know who polls what. It keeps polling the accounts whose lease
it held last (so a member working alone and cut off still gets mentions), and not the others (their holder
still polls them, or will lose its lease to someone who can). Before it has ever reached the server it polls
every account it has a token for, as a solo install would: a missed mention is worse than a duplicate fetch, and
a fetched mention is stored once however many machines fetch it (its uid is the same everywhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from console.channels import secret_key
from console.ports import Clock, SecretStore
from console.sync.manual import MANUAL_KIND
from console.team.keys import account_key
from storage.accounts import AccountRepo
from storage.errors import StorageError, TeamUnavailable
from storage.rows import AccountRow, Health
from storage.team.leases import LeaseRepo

__all__ = ["DEFAULT_LEASE_TTL", "LeaseKeeper"]

log = logging.getLogger(__name__)

#: Seconds a lease lives without renewal: an account whose poller went away is taken over within this (plus
#: one renewal period of the member taking over).
DEFAULT_LEASE_TTL = 60.0
#: How long closing the app waits to hand its leases back (they expire by themselves otherwise).
RELEASE_ON_CLOSE_SECONDS = 2.0
#: An account found without a token here is looked up again this often (the agent may sign in meanwhile; a
#: locked keyring may ask to be unlocked, so not every round).
TOKEN_RECHECK_SECONDS = 300.0


class LeaseKeeper:
    """Takes and renews this machine's poller leases; answers the poller's ``may_poll`` (the ``PollGate``).

    One task (:meth:`run`); :meth:`tick` is one round, for tests and ``team status``.
    """

    def __init__(
        self,
        leases: LeaseRepo,
        accounts: AccountRepo,
        secrets: SecretStore,
        member: str,
        clock: Clock,
        *,
        ttl: float = DEFAULT_LEASE_TTL,
        has_token: Callable[[AccountRow], bool] | None = None,
    ) -> None:
        """Wire the keeper; nothing is taken until :meth:`tick` or :meth:`run`.

        Args:
            leases: The leases on the team server.
            accounts: The local accounts.
            secrets: Where the channel tokens are (only read to see whether one is there; it never leaves).
            member: This member's name.
            clock: Local time (the renewal rhythm); lease expiry is on the server's clock.
            ttl: Lease lifetime in seconds; renewed every ``ttl / 3``.
            has_token: Whether this machine can poll an account (default: its credential is in ``secrets``).
        """
        self._leases = leases
        self._accounts = accounts
        self._secrets = secrets
        self.member = member
        self._clock = clock
        self.ttl = ttl
        self._has_token = has_token
        self._tokens: dict[int, bool] = {}  # account id -> a token is there (a found one is not looked up again)
        self._token_checked: dict[int, float] = {}  # account id -> when a missing token was last looked up
        self._colleague_expiry: float | None = None  # seconds until the first colleague's lease we could take expires
        self._held: dict[int, str] = {}  # account id -> account key, of the leases this machine holds
        self._holders: dict[int, str] = {}  # account id -> the member whose machine polls it
        self._reached = False  # the team server answered at least once
        self._offline = False
        self._listeners: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ the PollGate
    def may_poll(self, account_id: int) -> bool:
        """Whether this machine polls the account now (see the module docstring for the offline rule)."""
        if not self._reached:
            return True
        return account_id in self._held

    def refusal(self, account_id: int) -> str:
        """Why this machine does not poll the account, in plain words for its health line."""
        holder = self._holders.get(account_id)
        if holder:
            return f"Polled by {holder}'s machine"
        if self._offline:
            return "Not polled from here while the team server is unreachable (a colleague's machine polls it)"
        if not self._tokens.get(account_id, False):
            return "Not polled from here: this machine has no sign-in for it (a colleague's machine polls it)"
        return "Waiting to poll it from here (a colleague's machine polled it last)"

    @property
    def held(self) -> frozenset[int]:
        """The account ids this machine holds the lease of (polls)."""
        return frozenset(self._held)

    @property
    def holders(self) -> Mapping[int, str]:
        """Who polls each account, as last read from the server (account id -> member name)."""
        return dict(self._holders)

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` when this machine took over an account (the poller should poll it now)."""
        self._listeners.append(listener)

    # ------------------------------------------------------------------ taking and renewing
    async def run(self) -> None:
        """Take and renew leases every ``ttl / 3`` forever; cancel to stop (then call :meth:`aclose`).

        When a colleague's lease on an account this machine could poll runs out sooner, the next round comes
        right after it: an account whose poller went away is taken over within ``ttl`` of its last renewal.
        """
        while True:
            await self.tick()
            pause = self.ttl / 3
            if self._colleague_expiry is not None:
                pause = min(pause, self._colleague_expiry + 0.25)
            await asyncio.sleep(max(0.5, pause))

    async def tick(self) -> None:
        """One round: take or renew the lease of every account this machine can poll, then read who holds what.

        Never raises for an unreachable server (the offline rule applies); other storage trouble is logged.
        """
        pollable = await self._pollable()
        keys = {account.id: account_key(account.kind, account.base_url, account.handle) for account in pollable}
        held: dict[int, str] = {}
        try:
            for account_id, key in keys.items():
                if await self._leases.acquire_or_renew(key, self.member, self.ttl):
                    held[account_id] = key
            for account_id, key in self._held.items():
                if account_id not in keys:
                    # This machine can no longer poll it (token gone, account disabled, sign-in expired): hand it
                    # back so a colleague's machine takes over now rather than after the expiry.
                    await self._leases.release(key, self.member)
            holders = await self._leases.holders()
        except TeamUnavailable as exc:
            if not self._offline:
                log.info("team server unreachable; polling the accounts leased last: %s", exc)
            self._offline = True
            return
        except StorageError:
            log.exception("poller leases could not be renewed")
            return
        by_key = {account_key(a.kind, a.base_url, a.handle): a.id for a in self._accounts.list()}
        expiries = [
            row.expires_in for key, row in holders.items() if key in keys.values() and row.holder != self.member
        ]
        self._colleague_expiry = min(expiries, default=None)
        gained = held.keys() - self._held.keys()
        self._held = held
        self._holders = {by_key[key]: row.holder for key, row in holders.items() if key in by_key}
        self._reached = True
        self._offline = False
        if gained:
            for listener in list(self._listeners):
                try:
                    listener()
                except Exception:  # a listener's bug must not stop the leases
                    log.exception("lease listener failed")

    async def aclose(self) -> None:
        """Hand this machine's leases back (briefly), so a colleague's machine takes over at once."""
        keys = list(self._held.values())
        self._held.clear()
        if keys:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(self._leases.release(k, self.member) for k in keys), return_exceptions=True),
                    RELEASE_ON_CLOSE_SECONDS,
                )

    # ------------------------------------------------------------------ helpers
    async def _pollable(self) -> list[AccountRow]:
        """Enabled accounts this machine can poll: a token here and a sign-in that has not expired.

        An account whose sign-in expired here is not leased, so a colleague whose sign-in works takes it over.
        """
        out: list[AccountRow] = []
        for account in self._accounts.list(enabled_only=True):
            if account.kind == MANUAL_KIND or account.health is Health.AUTH_EXPIRED:
                continue
            if await self._token(account):
                out.append(account)
        return out

    async def _token(self, account: AccountRow) -> bool:
        if self._tokens.get(account.id):
            return True
        now = self._clock.now()
        checked = self._token_checked.get(account.id)
        if checked is not None and now - checked < TOKEN_RECHECK_SECONDS:
            return False
        self._token_checked[account.id] = now
        if self._has_token is not None:
            found = self._has_token(account)
        else:
            # The keyring can block on an unlock prompt: off the loop (STYLE B2).
            found = bool(await asyncio.to_thread(self._read_secret, secret_key(account.kind, account.id)))
        self._tokens[account.id] = found
        return found

    def _read_secret(self, key: str) -> Any:
        try:
            return self._secrets.get(key)
        except Exception:  # an unreadable keyring means no token we can use now
            log.info("could not read the secret %s", key)
            return None
