"""Discourse User API key sign-in in the browser: an RSA key pair, the forum's approval page, the encrypted key.

The handshake (meta.discourse.org/t/48536 "User API keys specification"; Discourse's
``UserApiKeysController``): the app opens ``<forum>/user-api-key/new`` with its public key, a nonce, a client
id, the scopes and ``auth_redirect``; the signed-in user presses Authorize; the forum redirects to
``auth_redirect?payload=<base64 of the RSA-encrypted JSON {"key", "nonce", "push", "api"}>``. The key is then
sent as ``User-Api-Key`` (with ``User-Api-Client-Id``). Moderators can do this; no admin key is needed.

The forum redirects only to addresses listed in its ``allowed_user_api_auth_redirects`` site setting (the
port must match exactly), so the listener uses a fixed port and the admin adds :func:`redirect_uri` once.
The private key lives only in memory, for the one sign-in.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from console.accounts.oauth import OAuthError, SignInTimeout, receive_redirect

__all__ = [
    "APPLICATION_NAME",
    "REDIRECT_PATH",
    "REDIRECT_PORT",
    "SCOPES",
    "DiscourseAuthError",
    "UserApiKey",
    "decrypt_payload",
    "new_client_id",
    "redirect_uri",
    "request_user_api_key",
]

APPLICATION_NAME = "Care Console"
#: ``write`` covers POST /posts.json (replies); ``read`` the notifications, posts and topics.
SCOPES = ("read", "write")
#: Discourse compares the redirect's port exactly (``WildcardUrlChecker``): one fixed, documented address.
REDIRECT_PORT = 8765
REDIRECT_PATH = "/discourse/callback"


class DiscourseAuthError(Exception):
    """The sign-in did not complete; ``str()`` is a sentence the agent can act on. Nothing was saved."""


@dataclass(frozen=True, slots=True)
class UserApiKey:
    """A User API key and the client id it was issued to."""

    key: str
    client_id: str

    def secret(self) -> str:
        """The secret-store value the Discourse connector reads (``User-Api-Key`` + ``User-Api-Client-Id``)."""
        return json.dumps({"user_api_key": self.key, "client_id": self.client_id})


def redirect_uri(port: int = REDIRECT_PORT) -> str:
    """The address the forum sends the key back to; its admin adds it to ``allowed_user_api_auth_redirects``."""
    return f"http://127.0.0.1:{port}{REDIRECT_PATH}"


def new_client_id() -> str:
    """A client id for a new connection (Discourse replaces a user's older key with the same client id)."""
    return "care-console-" + secrets.token_hex(12)


def decrypt_payload(private_key: rsa.RSAPrivateKey, payload: str) -> dict[str, object]:
    """Decrypt the ``payload`` parameter: base64 (with line breaks) of RSA-encrypted JSON.

    OAEP (SHA-1, as Ruby's ``PKCS1_OAEP_PADDING``) is asked for with ``padding=oaep``; forums older than that
    parameter ignore it and use PKCS#1 v1.5, so that is tried second.

    Raises:
        DiscourseAuthError: The payload is not base64, not decryptable with this key, or not a JSON object.
    """
    try:
        # A "+" turned into a space by a lenient decoder is put back; line breaks are dropped.
        sealed = base64.b64decode(payload.replace(" ", "+"))
    except (binascii.Error, ValueError) as exc:
        raise DiscourseAuthError("The forum's answer could not be read (bad encoding); try again.") from exc
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    try:
        plain = private_key.decrypt(sealed, oaep)
    except ValueError:
        try:
            # OpenSSL's implicit rejection returns random bytes for a bad v1.5 block; the JSON check catches it.
            plain = private_key.decrypt(sealed, padding.PKCS1v15())
        except ValueError as exc:
            raise DiscourseAuthError("The forum's answer could not be decrypted with this sign-in's key.") from exc
    try:
        data = json.loads(plain.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DiscourseAuthError("The forum's answer could not be decrypted with this sign-in's key.") from exc
    if not isinstance(data, dict):
        raise DiscourseAuthError("The forum's answer could not be decrypted with this sign-in's key.")
    return data


async def request_user_api_key(
    base_url: str,
    *,
    open_browser: Callable[[str], object],
    client_id: str | None = None,
    redirect_port: int = REDIRECT_PORT,
    wait_seconds: float = 300.0,
    application_name: str = APPLICATION_NAME,
) -> UserApiKey:
    """Ask the forum for a User API key through the browser (the user approves it while signed in).

    Args:
        base_url: The forum, e.g. ``https://forum.example``.
        open_browser: Opens a URL in the system browser (``webbrowser.open``; injected for tests).
        client_id: Reuse this client id (re-authenticating replaces the older key); a new one when None.
        redirect_port: The loopback port (0 picks a free one: tests only, a forum needs the fixed one allowed).
        wait_seconds: Seconds to wait for the browser to come back.
        application_name: What the forum's approval page and the user's Apps tab show.

    Returns:
        The key and its client id.

    Raises:
        DiscourseAuthError: The port is taken, no browser opened, the user did not approve in time (or the
            forum refused the redirect), the answer carried no key, could not be decrypted, or its nonce did not
            match this request.
    """
    host = urlsplit(base_url).netloc or base_url
    client = client_id or new_client_id()
    private_key = await asyncio.to_thread(rsa.generate_private_key, public_exponent=65537, key_size=2048)
    public_pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    nonce = secrets.token_urlsafe(24)

    def address(redirect: str) -> str:
        params = {
            "application_name": application_name,
            "client_id": client,
            "scopes": ",".join(SCOPES),
            "public_key": public_pem,
            "nonce": nonce,
            "auth_redirect": redirect,
            "padding": "oaep",
        }
        return f"{base_url.rstrip('/')}/user-api-key/new?{urlencode(params)}"

    try:
        answer, _ = await receive_redirect(
            host,
            port=redirect_port,
            path=REDIRECT_PATH,
            address=address,
            open_browser=open_browser,
            wait_seconds=wait_seconds,
        )
    except SignInTimeout as exc:
        minutes = round(wait_seconds / 60) or 1
        raise DiscourseAuthError(
            f"The sign-in on {host} was not completed within {minutes} minutes. If the forum showed an error "
            f"instead of an Authorize button, ask its admin to add {redirect_uri(redirect_port)} to the site "
            "setting allowed_user_api_auth_redirects (and to allow the read and write scopes in "
            "allow_user_api_key_scopes); otherwise try again."
        ) from exc
    except OAuthError as exc:
        raise DiscourseAuthError(str(exc)) from exc
    payload = answer.get("payload", "")
    if not payload.strip():
        raise DiscourseAuthError(f"{host} sent no key back (the request was not approved); nothing was saved.")
    data = decrypt_payload(private_key, payload)
    if not hmac.compare_digest(str(data.get("nonce", "")).encode(), nonce.encode()):
        raise DiscourseAuthError(f"The answer from {host} did not match this sign-in (nonce); try again.")
    key = data.get("key")
    if not isinstance(key, str) or not key:
        raise DiscourseAuthError(f"{host} sent an answer without a key; try again.")
    return UserApiKey(key=key, client_id=client)
