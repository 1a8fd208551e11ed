"""Per-channel sentences after an account was verified or added: who it is and what the channel allows."""

from __future__ import annotations

from console.channels import CHANNELS, ChannelKind

__all__ = ["verified_message"]

#: What each channel lets Care Console do, said once the credential works (reference/channels.md).
_LIMITS: dict[ChannelKind, str] = {
    ChannelKind.MASTODON: "Mentions and direct messages are read; replies keep the customer's visibility.",
    ChannelKind.BLUESKY: "The app password works; replies are limited to 300 characters (graphemes).",
    ChannelKind.DISCOURSE: "Posts mentioning or replying to this user in watched categories, and private messages, "
    "are read.",
    ChannelKind.X: "X bills every post read and every reply to your developer account; replies are allowed only "
    "to posts that mention this account or quote its posts.",
    ChannelKind.YOUTUBE: "Comments on the channel's videos are read; the API allows 10,000 units a day "
    "(a reply costs 50, a poll page 1); the quota left shows on YouTube items.",
    ChannelKind.FACEBOOK: "The Page token works for comments and Messenger; a Messenger reply is possible only "
    "within 24 hours of the customer's last message.",
}


def verified_message(kind: str, handle: str, identity_handle: str, display_name: str = "", *, added: bool) -> str:
    """``Added Bluesky account @brand.test (Brand). The app password works; …`` or ``@x is connected as @y. …``."""
    try:
        channel = ChannelKind(kind)
    except ValueError:
        return f"@{handle} is connected as @{identity_handle}."
    if channel is ChannelKind.MANUAL:
        return "Manual intake is ready: paste posts from any source with File → Add a post by hand…"
    label = CHANNELS[channel].label
    who = f"@{identity_handle}" + (f" ({display_name})" if display_name and display_name != identity_handle else "")
    if channel is ChannelKind.YOUTUBE:
        who = display_name or identity_handle
    head = f"Added {label} account {who}." if added else f"{label} account @{handle} is connected as {who}."
    limits = _LIMITS.get(channel, "")
    return f"{head} {limits}".strip()
