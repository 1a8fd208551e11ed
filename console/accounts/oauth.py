"""OAuth 2 authorization-code flow for a desktop app: PKCE S256, a random state, a one-shot loopback listener.

:func:`receive_redirect` (the listener and the browser round trip) also serves the Discourse User API key sign-in.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from console.channels.http import send
from console.ports import Clock

__all__ = ["OAuthClient", "OAuthError", "OAuthTokens", "SignInTimeout", "authorize", "pkce_pair", "receive_redirect"]

log = logging.getLogger(__name__)

#: What the browser shows once the app has the code.
_DONE_PAGE = (
    "<!doctype html><meta charset='utf-8'><title>Care Console</title>"
    "<body style='font-family:sans-serif;margin:3em'><h2>{title}</h2><p>{text}</p></body>"
)


class OAuthError(Exception):
    """The sign-in did not complete; ``str()`` is a sentence the agent can act on."""


class SignInTimeout(OAuthError):
    """The browser did not come back to the loopback listener in time."""


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """A provider and the app's registration with it.

    ``redirect_port`` 0 picks a free port (Google accepts any loopback port); X needs the exact port
    registered in its developer console (channels.md §0 "Desktop OAuth").
    """

    name: str
    authorize_url: str
    token_url: str
    client_id: str
    scopes: tuple[str, ...]
    redirect_port: int = 0
    redirect_path: str = "/callback"
    extra_params: Mapping[str, str] = field(default_factory=dict)
    client_secret: str | None = None  # Google desktop clients have one, and it is not confidential


@dataclass(frozen=True, slots=True)
class OAuthTokens:
    access_token: str
    refresh_token: str
    expires_at: float | None
    scope: str


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636).

    Returns:
        ``(verifier, challenge)``: 43 URL-safe characters, and base64url(sha256(verifier)) without padding.
    """
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class _Listener:
    """Answers the one redirect to ``127.0.0.1:<port><path>`` and hands its query to the flow."""

    def __init__(self, path: str) -> None:
        self._path = path
        self.result: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), 10)
            while (await asyncio.wait_for(reader.readline(), 10)) not in (b"\r\n", b"\n", b""):
                pass
        except (TimeoutError, ConnectionError, ValueError):
            writer.close()
            return
        parts = request_line.decode("latin-1").split()
        target = urlsplit(parts[1]) if len(parts) >= 2 else urlsplit("/")
        if target.path != self._path or self.result.done():
            self._respond(writer, 404, "Not found", "This address is only for the Care Console sign-in.")
        else:
            query = {key: values[0] for key, values in parse_qs(target.query).items()}
            if "error" in query:
                self._respond(writer, 200, "Sign-in cancelled", "You can close this window and return to Care Console.")
            else:
                self._respond(writer, 200, "Signed in", "You can close this window and return to Care Console.")
            self.result.set_result(query)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    @staticmethod
    def _respond(writer: asyncio.StreamWriter, status: int, title: str, text: str) -> None:
        body = _DONE_PAGE.format(title=html.escape(title), text=html.escape(text)).encode()
        head = (
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Found'}\r\n"
            f"Content-Type: text/html; charset=utf-8\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)


async def receive_redirect(
    name: str,
    *,
    port: int,
    path: str,
    address: Callable[[str], str],
    open_browser: Callable[[str], object],
    wait_seconds: float,
) -> tuple[dict[str, str], str]:
    """Listen on loopback, open the browser at the provider's page, and wait for the one redirect back.

    Args:
        name: The provider, for messages.
        port: The loopback port (0 picks a free one).
        path: The redirect path the listener answers.
        address: Builds the page to open from the redirect URI (``http://127.0.0.1:<port><path>``).
        open_browser: Opens a URL in the system browser (``webbrowser.open``; injected for tests).
        wait_seconds: Seconds to wait for the browser to come back.

    Returns:
        The redirect's query (first value of each parameter) and the redirect URI.

    Raises:
        SignInTimeout: The browser did not come back in time.
        OAuthError: The port is taken, or no browser could be opened.
    """
    listener = _Listener(path)
    try:
        server = await asyncio.start_server(listener.handle, "127.0.0.1", port)
    except OSError as exc:
        raise OAuthError(
            f"Could not listen on 127.0.0.1:{port} for the {name} sign-in ({exc}); "
            "close the program using that port and try again."
        ) from exc
    try:
        bound = server.sockets[0].getsockname()[1]
        redirect_uri = f"http://127.0.0.1:{bound}{path}"
        url = address(redirect_uri)
        try:
            opened = await asyncio.to_thread(open_browser, url)
        except Exception as exc:
            raise OAuthError(f"Could not open the browser for the {name} sign-in: {exc}") from exc
        if opened is False:
            raise OAuthError(f"No browser could be opened; open this address to sign in to {name}: {url}")
        try:
            answer = await asyncio.wait_for(asyncio.shield(listener.result), wait_seconds)
        except TimeoutError as exc:
            minutes = round(wait_seconds / 60) or 1
            raise SignInTimeout(f"The {name} sign-in was not completed within {minutes} minutes; try again.") from exc
    finally:
        server.close()
        await server.wait_closed()
    return answer, redirect_uri


async def authorize(
    client: OAuthClient,
    http: httpx.AsyncClient,
    *,
    open_browser: Callable[[str], object],
    clock: Clock,
    wait_seconds: float = 300.0,
) -> OAuthTokens:
    """Run the whole sign-in: listen on loopback, open the consent page, check the answer, exchange the code.

    Args:
        client: The provider and app registration.
        http: Client for the token request.
        open_browser: Opens a URL in the system browser (``webbrowser.open``; injected for tests).
        clock: Time source, for ``expires_at``.
        wait_seconds: Seconds to wait for the browser to come back.

    Returns:
        The tokens.

    Raises:
        OAuthError: The port is taken, the consent was denied, the state did not match, the browser did not
            come back in time, or the token request failed.
    """
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(24)

    def address(redirect_uri: str) -> str:
        params = {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(client.scopes),
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **client.extra_params,
        }
        return f"{client.authorize_url}?{urlencode(params)}"

    answer, redirect_uri = await receive_redirect(
        client.name,
        port=client.redirect_port,
        path=client.redirect_path,
        address=address,
        open_browser=open_browser,
        wait_seconds=wait_seconds,
    )
    if answer.get("state") != state:
        raise OAuthError(f"The {client.name} sign-in answer did not match this request (state); try again.")
    if "error" in answer:
        if answer["error"] == "access_denied":
            raise OAuthError(f"Access was not granted on {client.name}; nothing was saved.")
        detail = answer.get("error_description") or answer["error"]
        raise OAuthError(f"{client.name} refused the sign-in: {detail}")
    code = answer.get("code")
    if not code:
        raise OAuthError(f"{client.name} sent no authorization code; try again.")
    return await _exchange(client, http, code=code, verifier=verifier, redirect_uri=redirect_uri, clock=clock)


async def _exchange(
    client: OAuthClient, http: httpx.AsyncClient, *, code: str, verifier: str, redirect_uri: str, clock: Clock
) -> OAuthTokens:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client.client_id,
        "code_verifier": verifier,
    }
    if client.client_secret:
        form["client_secret"] = client.client_secret
    host = urlsplit(client.token_url).netloc or client.token_url
    try:
        response = await send(http, "POST", client.token_url, host=host, data=form)
    except Exception as exc:  # ChannelError from the transport helper
        raise OAuthError(f"Could not reach {client.name} to finish the sign-in: {exc}") from exc
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = None
    if not response.is_success or not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        detail = ""
        if isinstance(body, dict):
            detail = str(body.get("error_description") or body.get("error") or "")
        raise OAuthError(f"{client.name} did not issue a token ({response.status_code} {detail}).".replace(" )", ")"))
    expires_in = body.get("expires_in")
    return OAuthTokens(
        access_token=body["access_token"],
        refresh_token=body["refresh_token"] if isinstance(body.get("refresh_token"), str) else "",
        expires_at=clock.now() + float(expires_in) if isinstance(expires_in, int | float) else None,
        scope=str(body.get("scope", "")),
    )
