"""Reading quarantined channel items again with this version's parsers (after an app update)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from console.channels.base import InboundItem
from console.channels.mastodon import parse_notifications

#: Reads one raw quarantined entry: the item, None when it holds nothing to store, or ValueError.
Rereader = Callable[[object], InboundItem | None]


def reread_mastodon(raw: object) -> InboundItem | None:
    """Parse one raw Mastodon notification as the sync would.

    Args:
        raw: The notification JSON exactly as it was received.

    Returns:
        The mention, or None when the notification carries nothing to store (not a mention).

    Raises:
        ValueError: It still cannot be read; the message says why.
    """
    page = parse_notifications([raw])
    if page.skipped:
        raise ValueError(page.skipped[0][1])
    return page.items[0] if page.items else None


def default_rereaders() -> Mapping[str, Rereader]:
    """Channel kind -> re-reader, for the channels whose connectors keep the raw entries they could not read."""
    return {"mastodon": reread_mastodon}
