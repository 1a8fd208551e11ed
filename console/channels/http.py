"""Shared transport for connectors: one request helper that maps every httpx failure to a typed ChannelError."""

from __future__ import annotations

import email.utils
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn

import httpx
import regex

from console.channels.errors import AuthExpired, Permanent, RateLimited, Transient

__all__ = [
    "DEFAULT_RETRY_SECONDS",
    "grapheme_count",
    "json_body",
    "parse_iso",
    "parse_retry_after",
    "raise_for_status",
    "send",
]

#: How long to wait after a 429 that says nothing about when to come back.
DEFAULT_RETRY_SECONDS = 60.0

#: Query parameters in order; repeated names (``reasons``) are allowed.
Params = list[tuple[str, str | int | float | bool | None]]


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
) -> httpx.Response:
    """Send one request; transport failures become :class:`Transient` or :class:`Permanent`.

    Args:
        client: The account's long-lived client.
        method: HTTP method.
        url: Absolute URL.
        host: The service's name for messages (``bsky.social``).
        params: Query parameters.
        json: A JSON body.
        data: A form body.
        headers: Extra headers.

    Returns:
        The response, whatever its status (see :func:`raise_for_status`).

    Raises:
        Transient: Timeouts, refused or dropped connections.
        Permanent: The URL is not usable.
    """
    what = f"{method} {httpx.URL(url).path if _valid(url) else url}"
    try:
        return await client.request(
            method, url, params=params, json=json, data=dict(data) if data else None, headers=dict(headers or {})
        )
    except httpx.TimeoutException as exc:
        raise Transient(f"{host} did not answer {what} in time ({type(exc).__name__}).") from exc
    except httpx.UnsupportedProtocol as exc:
        raise Permanent(f"The server address {url!r} is not an http(s) URL: {exc}") from exc
    except httpx.TransportError as exc:
        raise Transient(f"Could not reach {host} for {what}: {type(exc).__name__}: {exc}") from exc
    except httpx.HTTPError as exc:
        raise Transient(f"{what} to {host} failed: {type(exc).__name__}: {exc}") from exc
    except (httpx.InvalidURL, httpx.StreamError) as exc:
        raise Permanent(f"Could not build {what} for {url!r}: {exc}") from exc


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

    Raises:
        AuthExpired, RateLimited, Transient, Permanent: Always.
    """
    status = response.status_code
    if status in auth_statuses:
        raise AuthExpired(f"{host} rejected the credential for {what} ({status}: {reason}).")
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
    try:
        return response.json()
    except UnicodeDecodeError:
        return json.loads(response.content.decode("utf-8", errors="replace"))


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
