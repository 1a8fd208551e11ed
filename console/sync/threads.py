"""The whole conversation of a queue item: fetched from the channel when not local, cached, with upstream marks."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from console.channels.base import Connector
from console.channels.errors import AuthExpired, ChannelError, Permanent, RateLimited, Unreachable
from console.channels.link_targets import link_targets
from console.channels.youtube import MetersQuota, QuotaUsage
from console.ports import Clock
from storage.errors import StorageError
from storage.thread_context import ContextMessage, MessageMarks, ThreadContextRepo

__all__ = ["ContextMessage", "FetchOutcome", "FetchResult", "MessageMarks", "ThreadService"]

log = logging.getLogger(__name__)

#: A cached copy younger than this is good enough; older ones are fetched again when the item is shown.
CACHE_SECONDS = 15 * 60
#: After a failed fetch (offline, signed out), showing the item again does not retry before this.
RETRY_SECONDS = 60.0


class FetchOutcome(StrEnum):
    FETCHED = "fetched"
    NOT_NEEDED = "not_needed"
    OFFLINE = "offline"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class FetchResult:
    outcome: FetchOutcome
    #: A sentence for the agent ("" when there is nothing to say).
    message: str
    #: Messages from the channel that were not stored locally.
    added: int = 0


class ThreadService:
    """Reads the cached thread extras (cheap, indexed) and fetches missing context with the account's connector."""

    def __init__(
        self,
        repo: ThreadContextRepo,
        connectors: Mapping[int, Connector],
        clock: Clock,
        *,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self._repo = repo
        self._connectors = connectors
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._inflight: set[int] = set()
        self._failed_at: dict[int, float] = {}

    def context(self, head_id: int) -> list[ContextMessage]:
        """Cached channel messages of the item that are not stored as mentions, oldest first."""
        return self._repo.context(head_id)

    def marks(self, head_id: int) -> dict[int, MessageMarks]:
        """Deleted-upstream, edit history and Messenger window per stored message (only messages with any)."""
        return self._repo.marks(head_id)

    def links(self, head_id: int) -> dict[int, list[tuple[str, str]]]:
        """Per stored message: ``(visible text, real target)`` of links whose text the channel shortened."""
        found = {mention_id: link_targets(html) for mention_id, html in self._repo.link_html(head_id).items()}
        return {mention_id: pairs for mention_id, pairs in found.items() if pairs}

    def window_closes_at(self, head_id: int) -> int | None:
        """Messenger: when the 24-hour reply window of the thread closes (after the latest customer message)."""
        closes = [m.window_closes_at for m in self._repo.marks(head_id).values() if m.window_closes_at is not None]
        return max(closes) if closes else None

    def quota(self, head_id: int) -> QuotaUsage | None:
        """YouTube: today's API quota of the item's account, or None for other channels."""
        head = self._repo.head(head_id)
        connector: object = None if head is None else self._connectors.get(head.account_id)
        return connector.quota if isinstance(connector, MetersQuota) else None

    def is_fetching(self, head_id: int) -> bool:
        return head_id in self._inflight

    def needs_fetch(self, head_id: int) -> bool:
        """True when the item answers a message that is not stored here and no fresh cached copy exists."""
        head = self._repo.head(head_id)
        if head is None or head.parent_external_id is None or head.account_id not in self._connectors:
            return False
        if head_id in self._inflight:
            return False
        failed = self._failed_at.get(head_id)
        if failed is not None and self._clock.now() - failed < RETRY_SECONDS:
            return False
        last = self._repo.last_fetch(head_id)
        if last is not None and self._clock.now() - last < self._cache_seconds:
            return False
        return head.parent_external_id not in self._repo.known_external_ids(head_id)

    async def fetch(self, head_id: int) -> FetchResult:
        """Read the item's whole thread from its channel and cache the messages not stored as mentions.

        Never raises for channel or storage trouble: the result says what happened in a sentence.

        Args:
            head_id: The queue item (thread head).

        Returns:
            FETCHED (with how many messages were added), NOT_NEEDED, OFFLINE or FAILED.
        """
        head = self._repo.head(head_id)
        connector = None if head is None else self._connectors.get(head.account_id)
        if head is None or connector is None or head_id in self._inflight:
            return FetchResult(FetchOutcome.NOT_NEEDED, "")
        self._inflight.add(head_id)
        self._failed_at[head_id] = self._clock.now()  # cleared on success
        try:
            items = await connector.fetch_thread(head.external_id)
            known = self._repo.known_external_ids(head_id)
            extra = [
                ContextMessage(
                    i.external_id, i.author_handle, i.author_name, i.text, i.url, int(i.posted_at), i.kind.value
                )
                for i in items
                if i.external_id not in known
            ]
            self._repo.replace(head_id, extra, fetched_at=math.floor(self._clock.now()))
        except Unreachable as exc:
            log.info("thread of item %s not fetched (offline): %s", head_id, exc)
            return FetchResult(
                FetchOutcome.OFFLINE,
                "Offline: the earlier messages could not be fetched from the channel; showing what is stored here.",
            )
        except AuthExpired:
            return FetchResult(
                FetchOutcome.FAILED, "Sign in to the account again to fetch the whole conversation from the channel."
            )
        except RateLimited as exc:
            return FetchResult(
                FetchOutcome.FAILED, f"The channel asks to wait; the whole conversation is not loaded ({exc})."
            )
        except Permanent as exc:
            return FetchResult(FetchOutcome.FAILED, f"The conversation could not be read on the channel: {exc}")
        except ChannelError as exc:
            return FetchResult(FetchOutcome.FAILED, f"The whole conversation could not be fetched: {exc}")
        except StorageError as exc:
            return FetchResult(FetchOutcome.FAILED, str(exc))
        finally:
            self._inflight.discard(head_id)
        self._failed_at.pop(head_id, None)
        return FetchResult(FetchOutcome.FETCHED, "", added=len(extra))
