"""Each account's real reply limit (a Mastodon instance's own), read once per account in the background."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

from console.channels.base import Connector
from console.channels.errors import ChannelError
from console.channels.mastodon import InstanceLimits
from console.ports import Clock

__all__ = ["DEFAULT_LIMITS", "RETRY_SECONDS", "LimitedConnector", "ReplyLimits"]

log = logging.getLogger(__name__)

#: Mastodon's defaults (500 characters, links count 23) until the instance has said otherwise.
DEFAULT_LIMITS = InstanceLimits()
#: After a failed read, the next request for that account waits this long before asking the channel again.
RETRY_SECONDS = 300.0


@runtime_checkable
class LimitedConnector(Protocol):
    """A connector whose server states its own status limits (``MastodonConnector.instance_limits``)."""

    async def instance_limits(self) -> InstanceLimits: ...


class ReplyLimits:
    """Remembers each account's status limits; reads them at most once per account, never blocking the caller.

    :meth:`request` starts the read as a task on the running event loop (the network call awaits, so the GUI
    loop keeps painting) and listeners of :meth:`subscribe` hear the account id once the limits are known.
    Until then :meth:`limits` answers Mastodon's defaults.
    """

    def __init__(self, connectors: Mapping[int, Connector], clock: Clock) -> None:
        """Share the poller's connector mapping (accounts added later are seen).

        Args:
            connectors: Connector per account id.
            clock: Time source for the retry pause after a failed read.
        """
        self._connectors = connectors
        self._clock = clock
        self._known: dict[int, InstanceLimits] = {}
        self._failed_at: dict[int, float] = {}
        self._tasks: dict[int, asyncio.Task[InstanceLimits | None]] = {}
        self._listeners: list[Callable[[int], None]] = []

    def known(self, account_id: int) -> InstanceLimits | None:
        """The limits read from the account's server, or None while they are not known."""
        return self._known.get(account_id)

    def limits(self, account_id: int) -> InstanceLimits:
        """The account's limits, Mastodon's defaults (500 / 23) until they are known."""
        return self._known.get(account_id, DEFAULT_LIMITS)

    def subscribe(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(account_id)`` when an account's limits become known."""
        self._listeners.append(listener)

    def request(self, account_id: int) -> bool:
        """Start reading the account's limits in the background unless known, under way or recently failed.

        Returns:
            True when a read was started (needs a running event loop; without one nothing happens).
        """
        if not self._needs_read(account_id):
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        task = loop.create_task(self.load(account_id), name=f"reply-limits-{account_id}")
        self._tasks[account_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(account_id, None))
        return True

    async def load(self, account_id: int) -> InstanceLimits | None:
        """Read the account's limits now (once: later calls answer from memory).

        Returns:
            The limits, or None when the account has no such limits or the read failed (defaults stay).
        """
        if account_id in self._known:
            return self._known[account_id]
        connector: object = self._connectors.get(account_id)
        if not isinstance(connector, LimitedConnector):
            return None
        try:
            limits = await connector.instance_limits()
        except ChannelError as exc:
            self._failed_at[account_id] = self._clock.now()
            log.info("account %s: instance limits not read (%s); using %s", account_id, exc, DEFAULT_LIMITS)
            return None
        self._known[account_id] = limits
        self._failed_at.pop(account_id, None)
        for listener in list(self._listeners):
            listener(account_id)
        return limits

    async def aclose(self) -> None:
        """Cancel reads still under way."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _needs_read(self, account_id: int) -> bool:
        if account_id in self._known or account_id in self._tasks:
            return False
        if not isinstance(self._connectors.get(account_id), LimitedConnector):
            return False
        failed = self._failed_at.get(account_id)
        return failed is None or self._clock.now() - failed >= RETRY_SECONDS
