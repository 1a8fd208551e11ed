"""Replies seen on the channel (issue #22 item 5): the brand's own posts, from anywhere, recognised during sync.

A colleague's install, a second solo copy or the channel's own app answers a customer; this copy did not send
that reply, so without this it would show the item unanswered, count the SLA down and let its agent answer the
same customer a second time. After each successful poll the poller asks the connector for the account's own
recent replies (one request, its own cursor; connectors that can, see :class:`SeesOwnPosts`). Each that answers
a stored customer message, or a reply already in an item's thread, is stored as a sent reply of the item with
a ``reply_seen`` event; listeners (the SLA engine: first or next response met; the outbox: the thread changed)
hear of it. Replies the outbox sent itself are known by their ids on the channel and never stored twice.

Works with no team: it is a sync feature.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from console.channels import CHANNELS, ChannelKind
from console.channels.base import Connector, OwnPost, SeesOwnPosts
from console.channels.errors import ChannelError
from console.ports import Clock
from storage.errors import StorageError
from storage.rows import AccountRow
from storage.seen_replies import SeenRecord, SeenReplyRepo

__all__ = ["OwnPostsReader", "SeenRecord", "channel_label", "seen_actor"]

log = logging.getLogger(__name__)


def channel_label(kind: str) -> str:
    """The channel's name as the app shows it ("Mastodon"), or the kind itself for one it does not know."""
    try:
        return CHANNELS[ChannelKind(kind)].label
    except (ValueError, KeyError):
        return kind


def seen_actor(kind: str) -> str:
    """Who a seen reply's event names: where it was posted ("on Mastodon"), not an agent of this copy."""
    return f"on {channel_label(kind)}"


@dataclass
class OwnPostsReader:
    """Reads each account's own recent replies after a poll and records those that answer stored items."""

    repo: SeenReplyRepo
    clock: Clock
    _listeners: list[Callable[[list[SeenRecord]], None]] = field(default_factory=list, init=False)

    def subscribe(self, listener: Callable[[list[SeenRecord]], None]) -> None:
        """Call ``listener(records)`` after a read stored seen replies (never with an empty list)."""
        self._listeners.append(listener)

    async def read(self, account: AccountRow, connector: Connector) -> list[SeenRecord]:
        """Read the account's own replies since its cursor, store the new seen replies, then save the cursor.

        Never raises (cancellation aside): the mentions of the poll are stored already, and a failure here only
        delays the seen replies to the next poll (the cursor is saved after the posts are stored, so none is
        lost). A connector without the capability reads nothing.

        Returns:
            The seen replies stored by this read.
        """
        if not isinstance(connector, SeesOwnPosts):
            return []
        try:
            cursor = self.repo.cursor(account.id)
            since = None if cursor is not None else self.repo.oldest_open(account.id)
            batch = await connector.fetch_own_posts(cursor, since=since)
            records = self._store(account, batch.posts)
            if batch.next_cursor is not None:
                self.repo.set_cursor(account.id, batch.next_cursor)
        except (ChannelError, StorageError) as exc:
            log.info("account %s: reading its own posts failed, tried again next poll: %s", account.id, exc)
            return []
        except Exception:  # a connector bug must not stop the poll that already stored the mentions
            log.exception("account %s: reading its own posts failed unexpectedly", account.id)
            return []
        if records:
            log.info("account %s: %d reply(ies) posted elsewhere seen on the channel", account.id, len(records))
            for listener in list(self._listeners):
                try:
                    listener(records)
                except Exception:  # a listener's bug must not hide the others' news
                    log.exception("seen-replies listener failed")
        return records

    def _store(self, account: AccountRow, posts: list[OwnPost]) -> list[SeenRecord]:
        """Record the posts (oldest first) that answer a stored item; a post answering an earlier one of the
        same read finds it already stored."""
        now = int(self.clock.now())
        actor = seen_actor(account.kind)
        records: list[SeenRecord] = []
        for post in posts:
            item = self.repo.answered_item(account.id, post.parent_external_id)
            if item is None:
                continue  # a reply to something this copy never stored (another conversation)
            record = self.repo.record(
                account_id=account.id,
                mention_id=item,
                external_id=post.external_id,
                url=post.url,
                text=post.text,
                posted_at=post.posted_at,
                visibility=post.visibility,
                now=now,
                actor=actor,
                client=post.client,
            )
            if record is not None:
                records.append(record)
        return records
