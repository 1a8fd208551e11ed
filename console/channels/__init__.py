"""Channel connectors: one module per channel, pure parse functions, typed errors; the per-kind registry.

May import: ``console.ports``, httpx and the row enums of storage only; the connector contract (``base``) is what sync
reads."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import httpx

from console.channels.base import AccountRef, Connector
from console.ports import Clock, SecretStore

__all__ = ["CHANNELS", "ChannelInfo", "ChannelKind", "SecretKind", "build_connector", "secret_key"]


class ChannelKind(StrEnum):
    MASTODON = "mastodon"
    BLUESKY = "bluesky"
    DISCOURSE = "discourse"
    X = "x"
    YOUTUBE = "youtube"
    FACEBOOK = "facebook"
    MANUAL = "manual"


class SecretKind(StrEnum):
    """How the credential of a channel is obtained."""

    TOKEN = "token"  # pasted access token (Mastodon)
    APP_PASSWORD = "app_password"  # Bluesky app password
    API_KEY = "api_key"  # Discourse admin or user API key
    OAUTH = "oauth"  # browser sign-in (X)
    NONE = "none"  # manual intake


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """What the accounts dialog and the CLI need to know about a channel kind."""

    kind: ChannelKind
    label: str
    default_base_url: str
    base_url_label: str
    handle_label: str  # "" when the account is read from the credential
    secret: SecretKind
    secret_label: str
    note: str = ""


CHANNELS: dict[ChannelKind, ChannelInfo] = {
    ChannelKind.MASTODON: ChannelInfo(
        ChannelKind.MASTODON,
        "Mastodon",
        "https://mastodon.social",
        "Instance",
        "",  # read from the token
        SecretKind.TOKEN,
        "Access token",
        "Create a token under Preferences → Development with read:notifications, read:statuses and write:statuses.",
    ),
    ChannelKind.BLUESKY: ChannelInfo(
        ChannelKind.BLUESKY,
        "Bluesky",
        "https://bsky.social",
        "Server (PDS)",
        "Handle",
        SecretKind.APP_PASSWORD,
        "App password",
        "Create an app password under Settings → Privacy and security → App passwords; never use the main password.",
    ),
    ChannelKind.DISCOURSE: ChannelInfo(
        ChannelKind.DISCOURSE,
        "Discourse forum",
        "",
        "Forum address",
        "Brand username",
        SecretKind.API_KEY,
        "API key",
        "Paste an admin API key scoped to the brand user, or a User API key as JSON "
        '{"user_api_key": "…", "client_id": "…"}. The brand user should watch the categories you care for.',
    ),
    ChannelKind.X: ChannelInfo(
        ChannelKind.X,
        "X",
        "https://api.x.com",
        "API address",
        "Username",
        SecretKind.OAUTH,
        "OAuth client id",
        "",  # filled from console.channels.x.ACCESS_NOTE by the dialog (paid tier, reply restriction)
    ),
    ChannelKind.YOUTUBE: ChannelInfo(
        ChannelKind.YOUTUBE,
        "YouTube comments",
        "https://www.googleapis.com",
        "API address",
        "Channel id",
        SecretKind.OAUTH,
        "OAuth client id",
        "Uses a Google Cloud OAuth client of type Desktop app. The API allows 10,000 units a day: a poll costs "
        "1 unit per page, each reply 50. Comments held for review are not listed.",
    ),
    ChannelKind.FACEBOOK: ChannelInfo(
        ChannelKind.FACEBOOK,
        "Facebook Page",
        "https://graph.facebook.com/v25.0",
        "Graph API address",
        "",  # the Page id is read from the token
        SecretKind.TOKEN,
        "Page access token",
        "Paste a long-lived Page access token (or a Business Manager system user token) with "
        "pages_read_engagement, pages_read_user_content, pages_manage_engagement and pages_messaging "
        "(and pages_manage_posts to post status updates). "
        "Messenger replies are possible only within 24 hours of the customer's last message.",
    ),
    ChannelKind.MANUAL: ChannelInfo(
        ChannelKind.MANUAL,
        "Manual intake",
        "manual://intake",
        "",
        "",
        SecretKind.NONE,
        "",
        "Paste the link and text of a post from any channel; replies are copied to the clipboard.",
    ),
}


def secret_key(kind: str, account_id: int) -> str:
    """The secret-store key of an account's credential (``"<channel>:<account id>"``)."""
    return f"{kind}:{account_id}"


#: Where each polled channel's connector lives; every connector takes (client, account=, secrets=, clock=).
_CONNECTORS: dict[str, tuple[str, str]] = {
    ChannelKind.MASTODON: ("console.channels.mastodon", "MastodonConnector"),
    ChannelKind.BLUESKY: ("console.channels.bluesky", "BlueskyConnector"),
    ChannelKind.DISCOURSE: ("console.channels.discourse", "DiscourseConnector"),
    ChannelKind.X: ("console.channels.x", "XConnector"),
    ChannelKind.YOUTUBE: ("console.channels.youtube", "YouTubeConnector"),
    ChannelKind.FACEBOOK: ("console.channels.facebook", "FacebookConnector"),
}


def build_connector(
    kind: str, client: httpx.AsyncClient, account: AccountRef, secrets: SecretStore, clock: Clock
) -> Connector | None:
    """The connector for an account of ``kind``.

    Args:
        kind: The account's channel kind (``accounts.kind``).
        client: The account's long-lived HTTP client.
        account: The account.
        secrets: The secret store its credential lives in.
        clock: Time source.

    Returns:
        The connector, or None for kinds that are not polled (manual intake, unknown kinds).
    """
    where = _CONNECTORS.get(kind)
    if where is None:
        return None
    # Imported now, only the kind asked for: each connector module imports this package's base module, and the
    # app starts without the code of channels it has no account on (start-up time).
    connector: Callable[..., Connector] = getattr(importlib.import_module(where[0]), where[1])
    return connector(client, account=account, secrets=secrets, clock=clock)
