"""Shared transport for connectors: every httpx failure and failed response becomes a typed ChannelError.

:func:`send` makes one request; :func:`call_json` sends an authorized one, renews an expired token once and
decodes the answer; :func:`refresh_grant` runs an OAuth 2 refresh; the rest read retry times, JSON and fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import ipaddress
import json
import math
import re
import ssl
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import httpx
import orjson
import regex

from console.channels.base import RateLimitInfo
from console.channels.errors import (
    AuthExpired,
    CertificateRefused,
    ChannelError,
    Permanent,
    RateLimited,
    Transient,
    Unreachable,
)

__all__ = [
    "DEFAULT_RETRY_SECONDS",
    "Grant",
    "bearer",
    "call_json",
    "epoch_budget",
    "error_json",
    "grapheme_count",
    "is_loopback",
    "json_body",
    "loads_bounded",
    "parse_iso",
    "parse_retry_after",
    "plain_http_refusal",
    "raise_for_status",
    "refresh_grant",
    "request_deadline",
    "retry_time",
    "send",
    "sent_at_most_once",
    "str_field",
    "tls_context",
]

#: How long to wait after a 429 that says nothing about when to come back.
DEFAULT_RETRY_SECONDS = 60.0

#: A whole request (connect, send, every byte of the answer) may take this many read timeouts at most: a server
#: that trickles one byte every few seconds never trips the per-read timeout, but it trips this (issue 20, sync 3).
DEADLINE_READ_TIMEOUTS = 4.0
#: The overall deadline when the client has no read timeout to derive it from.
DEFAULT_DEADLINE_SECONDS = 60.0
#: The largest answer read, in decoded bytes (a full page of 80 Mastodon notifications is about 0.5 MB); a
#: longer one is refused while it streams in, so one oversized post never fills memory (issue 20, sync 4).
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: JSON nested deeper than this is cut where it passes the depth (the value becomes :data:`TOO_DEEP`), so that
#: 100,000 brackets in one item make that item unusable instead of raising RecursionError for the whole page.
MAX_JSON_DEPTH = 200
#: What replaces a JSON value nested deeper than :data:`MAX_JSON_DEPTH`.
TOO_DEEP = f"[nested deeper than {MAX_JSON_DEPTH} levels: cut]"

#: Query parameters in order; repeated names (``reasons``) are allowed.
Params = list[tuple[str, str | int | float | bool | None]]

#: A connector's mapping of a failed response (and what was attempted) to a typed error; it always raises.
Fail = Callable[[httpx.Response, str], NoReturn]

_Credential = TypeVar("_Credential")


def str_field(mapping: Mapping[str, Any], key: str) -> str:
    """``mapping[key]`` when it is a string, else "" (a channel's JSON is not trusted to hold the type it should)."""
    value = mapping.get(key)
    return value if isinstance(value, str) else ""


def parse_iso(value: object) -> float:
    """Parse an ISO-8601 timestamp (``Z``, ``+00:00`` or Meta's ``+0000``) to epoch seconds.

    Args:
        value: The timestamp; a missing offset is read as UTC.

    Returns:
        Epoch seconds (with fractions).

    Raises:
        ValueError: ``value`` is not an ISO-8601 timestamp string.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"not an ISO-8601 timestamp: {value!r}")
    text = value.strip()
    if len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit() and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"  # "+0000" -> "+00:00" for Python 3.11
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"not an ISO-8601 timestamp: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Turn a ``Retry-After`` header (delta seconds or an HTTP-date) into an epoch time.

    Args:
        value: The header value, or None.
        now: The current epoch time, for the delta form.

    Returns:
        The epoch seconds to wait until (never before ``now``), or None when absent or unreadable.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return now + max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(now, when.timestamp())


def retry_time(headers: Mapping[str, str], *, now: float, reset_at: float | None = None) -> float:
    """When a rate-limited request may be sent again (channels.md §0).

    ``Retry-After`` first, then the channel's own reset time when it lies ahead (a reset already in the
    past, from clock skew, would mean hammering the server), then :data:`DEFAULT_RETRY_SECONDS` from now.

    Args:
        headers: The response headers.
        now: The current epoch time.
        reset_at: The channel's reset header in epoch seconds, or None.

    Returns:
        Epoch seconds, never before ``now``.
    """
    retry_at = parse_retry_after(headers.get("Retry-After"), now=now)
    if retry_at is not None:
        return retry_at
    return reset_at if reset_at is not None and reset_at > now else now + DEFAULT_RETRY_SECONDS


_GRAPHEME = regex.compile(r"\X")


def grapheme_count(text: str) -> int:
    """Extended grapheme clusters (Unicode UAX #29), what Mastodon and Bluesky count as characters.

    Combining marks, variation selectors, skin tones, ZWJ sequences and flag pairs do not add characters.

    Args:
        text: Any text.

    Returns:
        The number of user-perceived characters.
    """
    return len(_GRAPHEME.findall(text))


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a URL's host name, without brackets) names this computer: ``localhost`` (and names
    under ``.localhost``), 127.0.0.0/8 or ::1. Names are not resolved: only what the address itself says."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def plain_http_refusal(url: str) -> str | None:
    """Why a server address must not be used, or None when it may: plain ``http://`` is only for this computer.

    A bearer token sent over plain HTTP crosses the network readable by anyone on the way; the embedded
    sandbox and test servers listen on loopback, where nothing leaves the machine.

    Args:
        url: A server address or request URL.

    Returns:
        A sentence saying why the address is refused, or None.
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return None  # send() reports an unusable URL itself
    if parsed.scheme != "http" or is_loopback(parsed.host):
        return None
    return (
        f"Refused to use the plain http:// address {parsed.host}: sign-in tokens would cross the network "
        f"unencrypted. Use https://{parsed.host} (plain http:// is only allowed for this computer: "
        "localhost, 127.0.0.1)."
    )


def tls_context() -> ssl.SSLContext:
    """The TLS settings of every channel client: certificates checked (always) against the system's store.

    ``truststore`` verifies with the operating system's own certificate store (Windows, macOS keychain,
    the Linux CA bundle) instead of httpx's bundled list, so a company proxy that inspects TLS, whose
    certificate IT installs in the system store, is trusted like the system trusts it.
    """
    import truststore  # here: only clients that talk to the network need it

    context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _certificate_problem(exc: BaseException) -> str | None:
    """The verification error behind a failed connection, when a certificate was refused."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current.verify_message or str(current)
        if isinstance(current, ssl.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(current):
            return str(current)
        current = current.__cause__ or current.__context__
    return None


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    host: str,
    params: Params | None = None,
    json: Any = None,
    data: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    deadline: float | None = None,
    max_bytes: int | None = None,
) -> httpx.Response:
    """Send one request; transport failures become :class:`Unreachable`, :class:`Transient` or :class:`Permanent`.

    The whole request, answer included, has an overall deadline (not only httpx's per-read timeout), and the
    answer is read as a stream and refused once it passes ``max_bytes``.

    Args:
        client: The account's long-lived client.
        method: HTTP method.
        url: Absolute URL.
        host: The service's name for messages (``bsky.social``).
        params: Query parameters.
        json: A JSON body.
        data: A form body.
        headers: Extra headers.
        deadline: Seconds the whole request may take; default :func:`request_deadline` of the client.
        max_bytes: The largest answer accepted (decoded); default :data:`MAX_RESPONSE_BYTES`.

    Returns:
        The response, whatever its status (see :func:`raise_for_status`), its body read.

    Raises:
        Unreachable: No connection could be made (refused, no route, connect timeout, closed unanswered): when
            every account says this, the app shows itself offline and probes more often.
        Transient: Timeouts after connecting, broken-off answers, the deadline passed, an answer too large.
        CertificateRefused: The server's TLS certificate is not trusted by the system's certificate store.
        Permanent: The URL is not usable, or is a plain ``http://`` address of another computer.
    """
    what = f"{method} {httpx.URL(url).path if _valid(url) else url}"
    limit = MAX_RESPONSE_BYTES if max_bytes is None else max_bytes
    budget = request_deadline(client) if deadline is None else deadline
    refusal = plain_http_refusal(url)
    if refusal is not None:  # before any connection: the token must not leave in clear text
        raise Permanent(refusal)
    try:
        # The answer is streamed: its size is checked as it arrives, and the deadline covers it to the last byte.
        async with asyncio.timeout(budget):
            request = client.build_request(
                method, url, params=params, json=json, data=dict(data) if data else None, headers=dict(headers or {})
            )
            response = await client.send(request, stream=True)
            try:
                return await _read_capped(response, limit, host=host, what=what)
            finally:
                await response.aclose()
    except TimeoutError as exc:
        raise Transient(
            f"{host} did not finish answering {what} within {budget:g} s (a stalled or trickling answer); "
            "the request was abandoned."
        ) from exc
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        problem = _certificate_problem(exc)
        if problem is not None:
            raise CertificateRefused(
                f"The TLS certificate of {host} was refused for {what} ({problem}). Certificates are checked "
                "against this computer's certificate store: on a network that inspects TLS (a company proxy), "
                "ask IT to install its certificate there."
            ) from exc
        raise Unreachable(f"Could not reach {host} for {what}: {type(exc).__name__}: {exc}") from exc
    except httpx.TimeoutException as exc:
        raise Transient(f"{host} did not answer {what} in time ({type(exc).__name__}).") from exc
    except httpx.UnsupportedProtocol as exc:
        raise Permanent(f"The server address {url!r} is not an http(s) URL: {exc}") from exc
    except httpx.RemoteProtocolError as exc:
        if "without sending a response" in str(exc):
            raise Unreachable(
                f"Could not reach {host} for {what}: it closed the connection without answering."
            ) from exc
        raise Transient(f"{host} broke off {what}: {exc}") from exc
    except httpx.TransportError as exc:
        raise Transient(f"Could not reach {host} for {what}: {type(exc).__name__}: {exc}") from exc
    except httpx.HTTPError as exc:
        raise Transient(f"{what} to {host} failed: {type(exc).__name__}: {exc}") from exc
    except (httpx.InvalidURL, httpx.StreamError) as exc:
        raise Permanent(f"Could not build {what} for {url!r}: {exc}") from exc


def request_deadline(client: httpx.AsyncClient) -> float:
    """The overall deadline of one request on ``client``: :data:`DEADLINE_READ_TIMEOUTS` read timeouts.

    Args:
        client: The account's client; its ``httpx.Timeout`` is the one the app sets (STYLE B2).

    Returns:
        Seconds; :data:`DEFAULT_DEADLINE_SECONDS` when the client has no read timeout.
    """
    read = client.timeout.read
    return DEFAULT_DEADLINE_SECONDS if read is None else DEADLINE_READ_TIMEOUTS * read


def _megabytes(size: int) -> str:
    return f"{size / 1_048_576:g} MB" if size >= 1_048_576 else f"{size:,} bytes"


async def _read_capped(response: httpx.Response, limit: int, *, host: str, what: str) -> httpx.Response:
    """Read a streamed answer up to ``limit`` decoded bytes; the returned response holds the body.

    Raises:
        Transient: The answer is (or says it is) longer than ``limit``.
    """
    too_large = (
        f"{host} sent an answer to {what} larger than {_megabytes(limit)}; it was refused unread "
        "(one oversized item must not fill memory). Ask the server's admin, or try again later."
    )
    declared = response.headers.get("Content-Length", "")
    encoded = response.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity")
    if declared.isdigit() and int(declared) > limit and not encoded:
        raise Transient(too_large)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise Transient(too_large)
        chunks.append(chunk)
    # The body is decoded already: the new response must not decode it a second time.
    headers = [
        (name, value)
        for name, value in response.headers.multi_items()
        if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=b"".join(chunks),
        request=response.request,
        extensions=response.extensions,
    )


def _may_have_taken_effect(exc: ChannelError) -> bool:
    """Whether a request that failed with ``exc`` may all the same have been carried out by the service.

    A refusal (expired sign-in, rate limit, 4xx) and a connection that was never made are certain: nothing
    happened. A timeout after connecting, a 5xx, a broken-off or unreadable answer, or a connection closed
    without an answer are not: the service may have done it.
    """
    if isinstance(exc, AuthExpired | RateLimited | Permanent):
        return False
    return not isinstance(exc.__cause__, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


@contextlib.contextmanager
def sent_at_most_once(maybe_done: str, advice: str) -> Iterator[None]:
    """For a write that has no idempotency key (an X post, a Facebook Page post): a failure after which the
    service may have done it all the same becomes final, so that the outbox never sends it again.

    Args:
        maybe_done: What may have happened ("X may have posted the status update").
        advice: Why it is not sent again and what to check.

    Raises:
        Permanent: The write failed in a way that may have taken effect (``maybe_done (error). advice``).
        ChannelError: The write certainly had no effect (it may be sent again), unchanged.
    """
    try:
        yield
    except ChannelError as exc:
        if _may_have_taken_effect(exc):
            raise Permanent(f"{maybe_done} ({exc}). {advice}") from exc
        raise


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization: Bearer`` header of an access token."""
    return {"Authorization": f"Bearer {token}"}


def _unauthorized(response: httpx.Response) -> bool:
    return response.status_code == 401


async def call_json(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    host: str,
    what: str,
    fail: Fail,
    credential: _Credential,
    authorize: Callable[[_Credential], Mapping[str, str]],
    renew: Callable[[_Credential], Awaitable[_Credential]] | None = None,
    expired: Callable[[httpx.Response], bool] = _unauthorized,
    params: Params | None = None,
    json: Any = None,
    on_response: Callable[[httpx.Response], None] | None = None,
) -> Any:
    """Send one authorized request and return its decoded JSON; a failed response goes to the connector's ``fail``.

    With ``renew``, an answer that says the credential expired renews it once and sends the request again.
    ``renew`` is the connector's refresh: it runs under the account's lock, because refresh tokens rotate
    (two refreshes with the same token would revoke each other), and it returns the credential another task
    already renewed when there is one. A second "expired" answer, like every other failure, goes to ``fail``.

    Args:
        client: The account's long-lived client.
        method: HTTP method.
        url: Absolute URL.
        host: The service's name for messages.
        what: What is attempted, for messages (``"GET /2/users/me"``).
        fail: Maps a response that is not a success to a typed error (always raises).
        credential: The current credential (a token, tokens, a session or headers).
        authorize: The request headers for a credential (see :func:`bearer`).
        renew: Refreshes a refused credential and returns the new one; None when it cannot be renewed.
        expired: Whether a failed response means the credential expired (default: a 401).
        params: Query parameters.
        json: A JSON body.
        on_response: Called with every response, failed ones too (YouTube counts quota per request).

    Returns:
        The decoded JSON of a successful response.

    Raises:
        AuthExpired, RateLimited, Transient, Permanent: From :func:`send`, :func:`json_body`, ``renew`` or ``fail``.
    """
    for attempt in range(2):
        response = await send(client, method, url, host=host, params=params, json=json, headers=authorize(credential))
        if on_response is not None:
            on_response(response)
        if response.is_success:
            return json_body(response, host=host, what=what)
        if attempt == 0 and renew is not None and expired(response):
            credential = await renew(credential)
            continue
        fail(response, what)
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Grant:
    """What an OAuth 2 token endpoint answered to a ``refresh_token`` grant."""

    access_token: str
    refresh_token: str  # "" when the service keeps the old one
    expires_in: float | None  # seconds; None when the answer does not say


async def refresh_grant(
    client: httpx.AsyncClient, token_url: str, *, host: str, what: str, form: Mapping[str, str], fail: Fail
) -> Grant | None:
    """POST an OAuth 2 ``refresh_token`` grant (the caller holds the account's lock and stores the result).

    Args:
        client: The account's long-lived client.
        token_url: The token endpoint.
        host: The token endpoint's name for messages.
        what: What is attempted, for messages (``"POST /2/oauth2/token"``).
        form: The grant's form fields.
        fail: Maps any other failed response to a typed error (always raises).

    Returns:
        The new tokens, or None when the service refused the refresh token (400 or 401 ``invalid_grant``:
        revoked or run out), so the agent must sign in again.

    Raises:
        Transient: The answer is not JSON or has no ``access_token``; or from :func:`send`.
        Permanent: From :func:`send`.
        AuthExpired, RateLimited, Transient, Permanent: From ``fail``.
    """
    response = await send(client, "POST", token_url, host=host, data=form)
    if response.status_code in (400, 401):
        return None
    if not response.is_success:
        fail(response, what)
    body = json_body(response, host=host, what=what)
    access = str_field(body, "access_token") if isinstance(body, dict) else ""
    if not access:
        raise Transient(f"{host} returned malformed data for {what}: no access_token.")
    expires_in = body.get("expires_in")
    return Grant(
        access_token=access,
        refresh_token=str_field(body, "refresh_token"),
        expires_in=float(expires_in) if isinstance(expires_in, int | float) else None,
    )


def _valid(url: str) -> bool:
    try:
        httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return True


def raise_for_status(
    response: httpx.Response,
    *,
    host: str,
    what: str,
    reason: str,
    retry_at: float,
    now: float,
    auth_statuses: tuple[int, ...] = (401,),
    credential: str = "credential",
) -> NoReturn:
    """Map a failed response to the error hierarchy (channels.md §0).

    Args:
        response: A response that is not a success.
        host: The service's name for messages.
        what: What was attempted ("GET /notifications.json").
        reason: The service's own error sentence.
        retry_at: When a 429 may be retried (the caller reads the channel's headers).
        now: The current epoch time.
        auth_statuses: Statuses that mean the credential is bad.
        credential: What the credential is called in the message ("access token").

    Raises:
        AuthExpired, RateLimited, Transient, Permanent: Always.
    """
    status = response.status_code
    if status in auth_statuses:
        raise AuthExpired(f"{host} rejected the {credential} for {what} ({status}: {reason}).")
    if status == 429:
        raise RateLimited(
            f"{host} is rate limiting this account; retry in {math.ceil(max(0.0, retry_at - now))} s ({reason}).",
            retry_at=retry_at,
        )
    if status >= 500:
        raise Transient(f"{host} had a server error on {what} ({status}: {reason}).")
    if 300 <= status < 400:
        location = response.headers.get("Location", "?")
        raise Permanent(f"{host} redirected {what} to {location}; check the server address ({status}).", status=status)
    raise Permanent(f"{host} refused {what} ({status}: {reason}).", status=status)


def json_body(response: httpx.Response, *, host: str, what: str) -> Any:
    """The decoded JSON body, or :class:`Transient` when the body is not JSON.

    Args:
        response: A successful response.
        host: The service's name for messages.
        what: What was attempted.

    Returns:
        The decoded JSON.

    Raises:
        Transient: The body is not JSON.
    """
    try:
        return lenient_json(response)
    except ValueError as exc:
        raise Transient(f"{host} returned malformed data for {what}: the body is not JSON.") from exc


def lenient_json(response: httpx.Response) -> Any:
    """The JSON body; bytes that are not UTF-8 become U+FFFD instead of failing the whole page.

    One customer's broken character must not block every message after it (the page would be refused on
    every poll, forever).

    Raises:
        ValueError: the body is not JSON even so.
    """
    content = response.content
    fast = _fast_loads(content)
    if fast is not _NOT_FAST:
        return fast
    try:
        return response.json()
    except UnicodeDecodeError:
        return loads_bounded(content.decode("utf-8", errors="replace"))
    except RecursionError:
        return loads_bounded(content.decode("utf-8", errors="replace"))


#: What :func:`_fast_loads` returns when the standard library has to decide.
_NOT_FAST: Any = object()
#: Maps every byte to "0" (a digit) or " ": a run of 19 "0"s is a number orjson may not decode as Python does.
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_NUMBER = b"0" * 19


def _fast_loads(content: bytes) -> Any:
    """``json.loads(content)`` by orjson (a page decodes in half the time), or :data:`_NOT_FAST` where orjson
    could answer differently: integers past 64 bits (orjson makes them floats, so any run of 19 digits goes to
    the standard library), and every document orjson refuses (not UTF-8, a byte-order mark, NaN, 1e400, a lone
    surrogate, nesting past its limit), which the standard library then accepts or refuses, as before.
    """
    if _LONG_NUMBER in content.translate(_DIGITS):
        return _NOT_FAST
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return _NOT_FAST


#: The JSON tokens that matter for nesting: whole strings (brackets inside them do not count) and brackets.
_NESTING_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def loads_bounded(text: str) -> Any:
    """``json.loads`` that never raises RecursionError: values nested deeper than :data:`MAX_JSON_DEPTH` are
    replaced by the string :data:`TOO_DEEP` (the item holding one then fails its own parse, alone).

    Args:
        text: A JSON document.

    Returns:
        The decoded JSON.

    Raises:
        ValueError: ``text`` is not JSON.
    """
    try:
        return json.loads(text)
    except RecursionError:
        pass
    pieces: list[str] = []
    last = depth = 0
    cut_from: int | None = None
    for match in _NESTING_TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth == MAX_JSON_DEPTH + 1 and cut_from is None:
                cut_from = match.start()
        elif token in ("]", "}"):
            if depth == MAX_JSON_DEPTH + 1 and cut_from is not None:
                pieces += [text[last:cut_from], json.dumps(TOO_DEEP)]
                last, cut_from = match.end(), None
            depth -= 1
    pieces.append(text[last:])
    try:
        return json.loads("".join(pieces))
    except RecursionError as exc:  # unbalanced brackets that never close: not JSON
        raise ValueError("the JSON is nested too deeply and never closes") from exc


def error_json(response: httpx.Response) -> Any:
    """The JSON body of a failed response, or None when it is not JSON (an HTML error page)."""
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None


def epoch_budget(headers: Mapping[str, str], prefix: str) -> RateLimitInfo | None:
    """The request budget of ``<prefix>limit``, ``<prefix>remaining`` and ``<prefix>reset`` (epoch seconds).

    Bluesky sends ``RateLimit-*`` (``prefix="ratelimit-"``), X ``x-rate-limit-*`` (channels.md "Headers").

    Args:
        headers: Response headers (httpx's are matched case-insensitively).
        prefix: The names' common start, lower case.

    Returns:
        The budget, or None when limit or remaining is absent or not an integer.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        limit = int(lowered[f"{prefix}limit"].strip())
        remaining = int(lowered[f"{prefix}remaining"].strip())
    except (KeyError, ValueError):
        return None
    return RateLimitInfo(limit=limit, remaining=remaining, reset_at=epoch_header(lowered, f"{prefix}reset"))


def epoch_header(headers: Mapping[str, str], name: str) -> float | None:
    """A reset header in epoch seconds (Bluesky ``RateLimit-Reset``, X ``x-rate-limit-reset``), or None."""
    value = headers.get(name)
    if value is None:
        return None
    try:
        parsed = float(value.strip())
    except ValueError:
        return None
    return parsed if math.isfinite(parsed) and parsed > 0 else None
