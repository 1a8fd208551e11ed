"""Accounts service: add (verify before saving), verify, enable/disable, remove; credentials only in the SecretStore."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from console.accounts.discourse_auth import REDIRECT_PORT as DISCOURSE_REDIRECT_PORT
from console.accounts.discourse_auth import DiscourseAuthError, request_user_api_key
from console.accounts.oauth import OAuthClient, OAuthError, OAuthTokens, authorize
from console.channels import CHANNELS, ChannelKind, SecretKind, build_connector, secret_key
from console.channels.base import AccountRef, Connector, Identity
from console.channels.discourse import DiscourseConnector
from console.channels.errors import (
    AuthExpired,
    CertificateRefused,
    ChannelError,
    Permanent,
    RateLimited,
    Unreachable,
)
from console.channels.http import plain_http_refusal
from console.channels.x import AUTHORIZE_URL, DEFAULT_BASE_URL, SCOPES, XConnector, XTokens
from console.channels.youtube import DEFAULT_BASE_URL as YT_BASE_URL
from console.channels.youtube import GOOGLE_AUTHORIZE_URL, GOOGLE_TOKEN_URL, YouTubeConnector
from console.channels.youtube import SCOPES as YT_SCOPES
from console.ports import Clock, MemorySecretStore, SecretStore
from storage.account_admin import AccountAdmin
from storage.accounts import AccountRepo
from storage.rows import AccountRow, Health

__all__ = [
    "DISCOURSE_REDIRECT_PORT",
    "X_REDIRECT_PORT",
    "AccountError",
    "AccountService",
    "AccountView",
    "verify_failure",
]

log = logging.getLogger(__name__)

#: X needs the exact callback registered in its developer console: http://127.0.0.1:8765/callback.
X_REDIRECT_PORT = 8765
#: Scratch account id used to verify a credential before the account row exists.
_SCRATCH_ID = 0


class AccountError(Exception):
    """An account operation failed; ``str()`` is a sentence for the agent. Nothing was saved."""


@dataclass(frozen=True, slots=True)
class AccountView:
    """One account as the accounts dialog and ``accounts list`` show it."""

    id: int
    kind: str
    label: str
    handle: str
    base_url: str
    display_name: str
    health: Health
    health_reason: str
    enabled: bool
    items: int


class AccountService:
    """The one place accounts are created and removed; connectors verify every credential before it is kept."""

    def __init__(
        self,
        accounts: AccountRepo,
        admin: AccountAdmin,
        secrets: SecretStore,
        clock: Clock,
        client: httpx.AsyncClient,
        *,
        keyring_warning: str | None = None,
        on_added: Callable[[AccountRow], None] | None = None,
    ) -> None:
        """Wire the service.

        Args:
            accounts: Account rows.
            admin: Removal and item counts.
            secrets: The OS keyring (or the session-only store when no keyring backend is usable).
            clock: Time source.
            client: A long-lived HTTP client for verification calls.
            keyring_warning: Set when secrets are kept for this session only; shown by the dialog.
            on_added: Called with a new or re-enabled account (the runtime starts polling it).
        """
        self._accounts = accounts
        self._admin = admin
        self._secrets = secrets
        self._clock = clock
        self._client = client
        self.keyring_warning = keyring_warning
        self._on_added = on_added

    # -- reading ------------------------------------------------------------------------------------

    def list(self) -> list[AccountView]:
        """Real accounts that are not removed, oldest first (the embedded sandbox is not listed)."""
        removed = self._admin.removed_ids()
        views = []
        for row in self._accounts.list(include_sandbox=False):
            if row.id in removed:
                continue
            info = CHANNELS.get(ChannelKind(row.kind)) if row.kind in ChannelKind.__members__.values() else None
            views.append(
                AccountView(
                    id=row.id,
                    kind=row.kind,
                    label=info.label if info else row.kind,
                    handle=row.handle,
                    base_url=row.base_url,
                    display_name=row.display_name,
                    health=row.health,
                    health_reason=row.health_reason,
                    enabled=row.enabled,
                    items=self._admin.item_count(row.id),
                )
            )
        return views

    def find(self, name: str) -> AccountView:
        """An account by id, handle or ``kind:handle``.

        Raises:
            AccountError: No such account, or the name is ambiguous.
        """
        views = self.list()
        matches = [v for v in views if name in (str(v.id), v.handle, f"{v.kind}:{v.handle}", f"@{v.handle}")]
        if not matches:
            raise AccountError(f"No account named {name!r}; see `care-console accounts list`.")
        if len(matches) > 1:
            raise AccountError(f"{name!r} names several accounts; use the id or kind:handle.")
        return matches[0]

    # -- adding -------------------------------------------------------------------------------------

    async def verify_credential(
        self, kind: str, *, handle: str, base_url: str, secret: str
    ) -> tuple[Identity, dict[str, str]]:
        """Check a credential with the channel before anything is saved.

        Args:
            kind: The channel kind.
            handle: The login handle (Bluesky identifier, Discourse username, …).
            base_url: The server.
            secret: The token, app password or API key.

        Returns:
            Who the credential belongs to, and the secrets to keep (the credential, plus any session the
            check created, keyed by their suffix).

        Raises:
            AccountError: The channel refused the credential, could not be reached, or the input is bad.
        """
        channel = _kind(kind)
        if CHANNELS[channel].secret is SecretKind.NONE:
            raise AccountError(f"{CHANNELS[channel].label} has no credential to verify.")
        url = _check_base_url(base_url)
        if not secret.strip():
            raise AccountError(f"Enter the {CHANNELS[channel].secret_label.lower()}.")
        scratch = MemorySecretStore()
        scratch.set(secret_key(channel, _SCRATCH_ID), secret.strip())
        ref = AccountRef(_SCRATCH_ID, channel, handle.strip().removeprefix("@"), url)
        connector = build_connector(channel, self._client, ref, scratch, self._clock)
        if connector is None:
            raise AccountError(f"{kind} accounts cannot be verified here.")
        try:
            identity = await connector.verify()
        except ChannelError as exc:
            raise AccountError(verify_failure(CHANNELS[channel].label, url, exc)) from exc
        finally:
            await connector.aclose()
        prefix = secret_key(channel, _SCRATCH_ID)
        kept = {"": secret.strip()}
        for suffix in (":session",):
            value = scratch.get(prefix + suffix)
            if value:
                kept[suffix] = value
        return identity, kept

    async def add(self, kind: str, *, handle: str, base_url: str, secret: str) -> AccountView:
        """Verify the credential, then save the account and keep the credential in the secret store.

        Raises:
            AccountError: Verification failed or the secret store refused the credential (nothing saved).
        """
        channel = _kind(kind)
        if channel is ChannelKind.MANUAL:
            return self._save(
                channel, handle="manual", base_url="manual://intake", display_name="Manual intake", kept={}
            )
        identity, kept = await self.verify_credential(channel, handle=handle, base_url=base_url, secret=secret)
        login = handle.strip().removeprefix("@") if channel is ChannelKind.DISCOURSE else identity.handle
        return self._save(
            channel, handle=login, base_url=_check_base_url(base_url), display_name=identity.display_name, kept=kept
        )

    async def connect_x(
        self,
        client_id: str,
        *,
        open_browser: Callable[[str], object],
        base_url: str = DEFAULT_BASE_URL,
        authorize_url: str = AUTHORIZE_URL,
        redirect_port: int = X_REDIRECT_PORT,
        wait_seconds: float = 300.0,
    ) -> AccountView:
        """Sign in to X in the browser (OAuth 2 + PKCE), verify, and save the account.

        Raises:
            AccountError: The sign-in or the verification failed (nothing saved).
        """
        if not client_id.strip():
            raise AccountError("Enter the OAuth 2 client id of your X app (Native App type).")
        url = _check_base_url(base_url)
        oauth = OAuthClient(
            name="X",
            authorize_url=authorize_url,
            token_url=url.rstrip("/") + "/2/oauth2/token",
            client_id=client_id.strip(),
            scopes=SCOPES,
            redirect_port=redirect_port,
        )
        return await self._connect_oauth(
            ChannelKind.X,
            oauth,
            base_url=url,
            open_browser=open_browser,
            wait_seconds=wait_seconds,
            stored=lambda tokens: XTokens(
                tokens.access_token, tokens.refresh_token, tokens.expires_at or 0.0, client_id.strip()
            ).dumps(),
            connector=lambda scratch: XConnector(
                self._client, account=AccountRef(_SCRATCH_ID, "x", "", url), secrets=scratch, clock=self._clock
            ),
            refused="X accepted the sign-in but the API refused it",
        )

    async def connect_youtube(
        self,
        client_id: str,
        client_secret: str,
        *,
        open_browser: Callable[[str], object],
        base_url: str = YT_BASE_URL,
        authorize_url: str = GOOGLE_AUTHORIZE_URL,
        token_url: str = GOOGLE_TOKEN_URL,
        wait_seconds: float = 300.0,
    ) -> AccountView:
        """Sign in to Google in the browser (installed-app OAuth, loopback + PKCE), verify, save the channel.

        Raises:
            AccountError: The sign-in or the verification failed (nothing saved).
        """
        if not client_id.strip():
            raise AccountError("Enter the OAuth client id of your Google Cloud Desktop app.")
        url = _check_base_url(base_url)
        oauth = OAuthClient(
            name="Google",
            authorize_url=authorize_url,
            token_url=token_url,
            client_id=client_id.strip(),
            scopes=YT_SCOPES,
            extra_params={"access_type": "offline", "prompt": "consent"},
            client_secret=client_secret.strip() or None,
        )
        return await self._connect_oauth(
            ChannelKind.YOUTUBE,
            oauth,
            base_url=url,
            open_browser=open_browser,
            wait_seconds=wait_seconds,
            stored=lambda tokens: json.dumps(
                {
                    "access_token": tokens.access_token,
                    "refresh_token": tokens.refresh_token,
                    "expires_at": tokens.expires_at or 0.0,
                    "client_id": client_id.strip(),
                    "client_secret": client_secret.strip(),
                }
            ),
            connector=lambda scratch: YouTubeConnector(
                self._client,
                account=AccountRef(_SCRATCH_ID, "youtube", "", url),
                secrets=scratch,
                clock=self._clock,
                token_url=token_url,
            ),
            refused="Google accepted the sign-in but YouTube refused it",
        )

    async def _connect_oauth(
        self,
        kind: ChannelKind,
        oauth: OAuthClient,
        *,
        base_url: str,
        open_browser: Callable[[str], object],
        wait_seconds: float,
        stored: Callable[[OAuthTokens], str],
        connector: Callable[[SecretStore], Connector],
        refused: str,
    ) -> AccountView:
        """Sign in in the browser, verify the tokens with a connector on a scratch store, and save the account.

        Args:
            kind: The channel (X or YouTube).
            oauth: The provider and the app's registration with it.
            base_url: The checked API address.
            open_browser: Opens the consent page.
            wait_seconds: How long the sign-in may take.
            stored: The tokens as the connector reads them from the secret store.
            connector: The channel's connector, reading its credential from the store it is given.
            refused: What to say, before the channel's error, when the channel refuses the new tokens.

        Raises:
            AccountError: The sign-in or the verification failed (nothing saved).
        """
        try:
            tokens = await authorize(
                oauth, self._client, open_browser=open_browser, clock=self._clock, wait_seconds=wait_seconds
            )
        except OAuthError as exc:
            raise AccountError(str(exc)) from exc
        return await self._verify_and_save(
            kind, stored(tokens), base_url=base_url, connector=connector, refused=refused
        )

    async def connect_discourse_browser(
        self,
        base_url: str,
        *,
        open_browser: Callable[[str], object],
        redirect_port: int = DISCOURSE_REDIRECT_PORT,
        wait_seconds: float = 300.0,
    ) -> AccountView:
        """Sign in to a Discourse forum in the browser (User API key, read and write), verify, save the account.

        The account's handle is the signed-in user. Re-authenticating on the same forum reuses the stored
        client id, so the forum replaces the older key instead of keeping both.

        Raises:
            AccountError: The sign-in or the verification failed (nothing saved).
        """
        url = _check_base_url(base_url)
        removed = self._admin.removed_ids()
        keys = tuple(
            secret_key(row.kind, row.id)
            for row in self._accounts.list(include_sandbox=False)
            if row.kind == ChannelKind.DISCOURSE and row.base_url == url and row.id not in removed
        )
        client_id = await asyncio.to_thread(self._stored_client_id, keys)  # the keyring may block
        try:
            key = await request_user_api_key(
                url,
                open_browser=open_browser,
                client_id=client_id,
                redirect_port=redirect_port,
                wait_seconds=wait_seconds,
            )
        except DiscourseAuthError as exc:
            raise AccountError(str(exc)) from exc
        return await self._verify_and_save(
            ChannelKind.DISCOURSE,
            key.secret(),
            base_url=url,
            connector=lambda scratch: DiscourseConnector(
                self._client,
                account=AccountRef(_SCRATCH_ID, ChannelKind.DISCOURSE, "", url),
                secrets=scratch,
                clock=self._clock,
            ),
            refused="The forum issued a key but refused it",
        )

    def _stored_client_id(self, keys: tuple[str, ...]) -> str | None:
        """The client id of the first of these secrets that is a User API key (a browser sign-in), if any."""
        for key in keys:
            try:
                data = json.loads(self._secrets.get(key) or "")
            except Exception:  # not JSON (an admin key), or the keyring is not readable: a new client id
                continue
            if isinstance(data, dict) and isinstance(data.get("client_id"), str) and data["client_id"]:
                return str(data["client_id"])
        return None

    async def _verify_and_save(
        self,
        kind: ChannelKind,
        credential: str,
        *,
        base_url: str,
        connector: Callable[[SecretStore], Connector],
        refused: str,
    ) -> AccountView:
        """Verify a credential from a browser sign-in on a scratch store, then save the account under its identity.

        Raises:
            AccountError: The channel refused the credential (nothing saved).
        """
        key = secret_key(kind, _SCRATCH_ID)
        scratch = MemorySecretStore()
        scratch.set(key, credential)
        checker = connector(scratch)
        try:
            identity = await checker.verify()
        except Unreachable as exc:
            raise AccountError(verify_failure(CHANNELS[kind].label, base_url, exc)) from exc
        except ChannelError as exc:
            raise AccountError(f"{refused}: {exc}") from exc
        finally:
            await checker.aclose()
        # A refresh during verify rotates OAuth tokens: keep the newest.
        kept = {"": scratch.get(key) or credential}
        return self._save(
            kind, handle=identity.handle, base_url=base_url, display_name=identity.display_name, kept=kept
        )

    def _save(
        self, kind: ChannelKind, *, handle: str, base_url: str, display_name: str, kept: dict[str, str]
    ) -> AccountView:
        row = self._accounts.add(
            kind=kind, handle=handle, base_url=base_url, display_name=display_name, now=math.floor(self._clock.now())
        )
        self._admin.restore(row.id)  # adding a removed account again brings it back
        try:
            for suffix, value in kept.items():
                self._secrets.set(secret_key(kind, row.id) + suffix, value)
        except Exception as exc:
            if self._admin.item_count(row.id) == 0:
                self._admin.remove(row.id, delete_items=True, now=math.floor(self._clock.now()))
            raise AccountError(f"The credential could not be kept in the OS keyring: {exc}") from exc
        self._accounts.set_enabled(row.id, True)
        self._accounts.set_health(row.id, Health.OK)
        row = self._accounts.get(row.id) or row
        if self._on_added is not None:
            self._on_added(row)
        return next(view for view in self.list() if view.id == row.id)

    # -- maintenance ----------------------------------------------------------------------------------

    async def verify(self, account_id: int) -> Identity:
        """Check a saved account's credential now; the account's health follows the answer.

        Raises:
            AccountError: The credential was refused or the channel could not be reached.
        """
        row = self._row(account_id)
        connector = build_connector(
            row.kind, self._client, AccountRef(row.id, row.kind, row.handle, row.base_url), self._secrets, self._clock
        )
        if connector is None:
            raise AccountError(f"{row.kind} accounts have nothing to verify.")
        try:
            identity = await connector.verify()
        except ChannelError as exc:
            if isinstance(exc, AuthExpired):
                health = Health.AUTH_EXPIRED
            elif isinstance(exc, RateLimited):
                health = Health.RATE_LIMITED
            else:
                health = Health.FAILING
            self._accounts.set_health(row.id, health, str(exc))
            label = CHANNELS[ChannelKind(row.kind)].label if row.kind in set(ChannelKind) else row.kind
            raise AccountError(verify_failure(label, row.base_url, exc, adding=False)) from exc
        finally:
            await connector.aclose()
        self._accounts.set_health(row.id, Health.OK)
        return identity

    async def replace_secret(self, account_id: int, secret: str) -> Identity:
        """Re-authenticate with a new token, app password or key: verified first, then kept.

        Raises:
            AccountError: The new credential was refused (the old one stays).
        """
        row = self._row(account_id)
        identity, kept = await self.verify_credential(row.kind, handle=row.handle, base_url=row.base_url, secret=secret)
        await asyncio.to_thread(self._store_all, row, kept)
        self._accounts.set_health(row.id, Health.OK)
        return identity

    def _store_all(self, row: AccountRow, kept: dict[str, str]) -> None:
        self._secrets.delete(secret_key(row.kind, row.id) + ":session")
        for suffix, value in kept.items():
            self._secrets.set(secret_key(row.kind, row.id) + suffix, value)

    def set_enabled(self, account_id: int, enabled: bool) -> None:
        """Pause or resume syncing of an account."""
        row = self._row(account_id)
        self._accounts.set_enabled(row.id, enabled)
        if enabled and self._on_added is not None:
            self._on_added(self._accounts.get(row.id) or row)

    def remove(self, account_id: int, *, delete_items: bool) -> int:
        """Remove an account and forget its credential.

        Args:
            account_id: The account.
            delete_items: Delete its messages too; otherwise they stay in the archive and reports.

        Returns:
            Messages deleted.

        Raises:
            AccountError: The sandbox account cannot be removed.
        """
        row = self._row(account_id)
        if row.is_sandbox:
            raise AccountError("The sandbox account cannot be removed; it disappears once a real account exists.")
        deleted = self._admin.remove(row.id, delete_items=delete_items, now=math.floor(self._clock.now()))
        for suffix in ("", ":session"):
            try:
                self._secrets.delete(secret_key(row.kind, row.id) + suffix)
            except Exception as exc:  # the account is gone either way; say so in the log
                log.warning("Could not delete the credential of account %s: %s", row.id, exc)
        return deleted

    def _row(self, account_id: int) -> AccountRow:
        row = self._accounts.get(account_id)
        if row is None or row.id in self._admin.removed_ids():
            raise AccountError(f"There is no account {account_id}.")
        return row


def _kind(kind: str) -> ChannelKind:
    try:
        return ChannelKind(kind.strip().lower())
    except ValueError:
        known = ", ".join(k.value for k in ChannelKind)
        raise AccountError(f"Unknown channel {kind!r}; choose one of: {known}.") from None


def verify_failure(label: str, base_url: str, exc: ChannelError, *, adding: bool = True) -> str:
    """Why a credential check failed, in words an agent can act on (issue 19 #13): a server that cannot be
    reached is a wrong address (or no connection), not a refused credential, and no exception text is shown.

    Args:
        label: The channel's name ("Mastodon").
        base_url: The server address the agent typed (normalised).
        exc: What the connector raised.
        adding: The check was for a new credential (the sentence says nothing was saved).

    Returns:
        One or two sentences.
    """
    host = urlsplit(base_url).hostname or base_url
    unsaved = " Nothing was saved." if adding else ""
    if isinstance(exc, CertificateRefused):
        return f"{exc}{unsaved}"
    if isinstance(exc, Unreachable):
        return (
            f"The server {host} could not be reached: check the address (for example https://mastodon.social) "
            f"and your internet connection.{unsaved}"
        )
    if isinstance(exc, AuthExpired) or (isinstance(exc, Permanent) and exc.status in (401, 403)):
        return f"The {label} credential was not accepted by {host}: check it and paste it again.{unsaved}"
    if isinstance(exc, RateLimited):
        return f"{host} asks us to slow down: try again in a minute.{unsaved}"
    if isinstance(exc, Permanent):
        return f"{host} did not answer like a {label} server: check the address.{unsaved} (The server said: {exc})"
    log.info("credential check with %s failed: %s", host, exc)
    return f"{host} did not answer properly just now: try again in a moment.{unsaved}"


def _check_base_url(base_url: str) -> str:
    url = base_url.strip().rstrip("/")
    if not url.startswith(("https://", "http://")):
        url = "https://" + url if url else ""
    parts = urlsplit(url)
    if not parts.hostname:
        raise AccountError("Enter the server address, for example https://mastodon.social.")
    refusal = plain_http_refusal(url)
    if refusal is not None:
        raise AccountError(refusal + " Nothing was saved.")
    return url
