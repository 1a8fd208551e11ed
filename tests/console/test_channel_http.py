"""The shared connector transport (console/channels/http.py) over a real loopback socket: renewal and refresh grants."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any, NoReturn, TypeVar

import httpx
import pytest

from console.channels.errors import AuthExpired, Permanent, RateLimited, Transient, Unreachable
from console.channels.http import (
    DEFAULT_RETRY_SECONDS,
    Grant,
    bearer,
    call_json,
    raise_for_status,
    refresh_grant,
    retry_time,
    send,
)
from tests.fakes.http_server import FakeHttpServer

T = TypeVar("T")
Arun = Callable[[Awaitable[T]], T]
NOW = 1_800_000_000.0


@pytest.fixture
def server() -> Iterator[FakeHttpServer]:
    with FakeHttpServer() as fake:
        yield fake


def fail(response: httpx.Response, what: str) -> NoReturn:
    raise_for_status(response, host="fake", what=what, reason="no", retry_at=NOW + 60, now=NOW)


class Renewals:
    """A connector's refresh: hands out "token-1", "token-2", ... and remembers what it was asked to renew."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, stale: str) -> str:
        self.asked.append(stale)
        return f"token-{len(self.asked)}"


async def call(server: FakeHttpServer, renew: Renewals | None, **options: Any) -> Any:
    async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(2.0)) as client:
        return await call_json(
            client,
            "GET",
            server.base_url + "/me",
            host="fake",
            what="GET /me",
            fail=fail,
            credential="token-0",
            authorize=bearer,
            renew=renew,
            **options,
        )


def test_call_json_renews_an_expired_token_once_and_sends_again(server: FakeHttpServer, arun: Arun[Any]) -> None:
    server.reply(401, json={"error": "expired"})
    server.reply(200, json={"id": "me"})
    renew = Renewals()
    seen: list[int] = []

    assert arun(call(server, renew, on_response=lambda response: seen.append(response.status_code))) == {"id": "me"}
    assert renew.asked == ["token-0"]
    assert [r.headers["authorization"] for r in server.requests] == ["Bearer token-0", "Bearer token-1"]
    assert seen == [401, 200]  # every answer, the refused one too


def test_call_json_second_expired_answer_is_auth_expired(server: FakeHttpServer, arun: Arun[Any]) -> None:
    server.reply(401, json={"error": "expired"})
    server.reply(401, json={"error": "still expired"})
    renew = Renewals()

    with pytest.raises(AuthExpired, match="GET /me"):
        arun(call(server, renew))
    assert renew.asked == ["token-0"]
    assert len(server.requests) == 2


def test_call_json_without_renew_fails_on_the_first_401(server: FakeHttpServer, arun: Arun[Any]) -> None:
    server.reply(401, json={"error": "expired"})

    with pytest.raises(AuthExpired):
        arun(call(server, None))
    assert len(server.requests) == 1


def test_call_json_renews_only_what_expired_says(server: FakeHttpServer, arun: Arun[Any]) -> None:
    server.reply(400, json={"error": "ExpiredToken"})
    server.reply(200, json=[])
    server.reply(429, json={})
    renew = Renewals()

    def expired(response: httpx.Response) -> bool:
        return response.status_code == 400  # Bluesky says ExpiredToken with a 400

    assert arun(call(server, renew, expired=expired)) == []
    with pytest.raises(RateLimited):
        arun(call(server, renew, expired=expired))
    assert renew.asked == ["token-0"]


async def grant(server: FakeHttpServer) -> Grant | None:
    async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(2.0)) as client:
        return await refresh_grant(
            client,
            server.base_url + "/token",
            host="fake",
            what="POST /token",
            form={"grant_type": "refresh_token", "refresh_token": "r-0"},
            fail=fail,
        )


def test_refresh_grant_reads_new_tokens(server: FakeHttpServer, arun: Arun[Any]) -> None:
    server.reply(200, json={"access_token": "a-1", "refresh_token": "r-1", "expires_in": 7200})
    server.reply(200, json={"access_token": "a-2"})

    assert arun(grant(server)) == Grant("a-1", "r-1", 7200.0)
    assert arun(grant(server)) == Grant("a-2", "", None)
    assert server.requests[0].form == {"grant_type": ["refresh_token"], "refresh_token": ["r-0"]}


@pytest.mark.parametrize("status", [400, 401])
def test_refresh_grant_refused_refresh_token_is_none(server: FakeHttpServer, arun: Arun[Any], status: int) -> None:
    server.reply(status, json={"error": "invalid_grant"})

    assert arun(grant(server)) is None


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [(200, {"token_type": "bearer"}, Transient), (503, {}, Transient), (404, {}, Permanent)],
)
def test_refresh_grant_other_failures_are_typed(
    server: FakeHttpServer, arun: Arun[Any], status: int, body: dict[str, str], error: type[Exception]
) -> None:
    server.reply(status, json=body)

    with pytest.raises(error):
        arun(grant(server))


@pytest.mark.parametrize(
    ("headers", "reset_at", "expected"),
    [
        ({"Retry-After": "30"}, NOW + 300, NOW + 30),  # Retry-After first
        ({}, NOW + 300, NOW + 300),  # then the channel's reset time
        ({}, NOW - 5, NOW + DEFAULT_RETRY_SECONDS),  # a reset in the past (clock skew) is not trusted
        ({"Retry-After": "soon"}, None, NOW + DEFAULT_RETRY_SECONDS),
    ],
)
def test_retry_time_order(headers: dict[str, str], reset_at: float | None, expected: float) -> None:
    assert retry_time(headers, now=NOW, reset_at=reset_at) == expected


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once the socket is closed


def test_no_connection_is_unreachable_for_every_channel(arun: Arun[Any], server: FakeHttpServer) -> None:
    # The app is offline when every account says Unreachable: every connector's transport must say it.
    async def get(url: str, wait: float = 2.0) -> Any:
        async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(wait)) as client:
            return await send(client, "GET", url, host="fake")

    with pytest.raises(Unreachable, match="Could not reach fake"):
        arun(get(f"http://127.0.0.1:{_closed_port()}/me"))
    server.drop()  # accepts the connection, then closes it without a word
    with pytest.raises(Unreachable, match="without answering"):
        arun(get(server.base_url + "/me"))
    server.stall(5.0)  # connected, but no answer in time: the host is there, so not offline
    with pytest.raises(Transient) as slow:
        arun(get(server.base_url + "/me", wait=0.3))
    assert not isinstance(slow.value, Unreachable)
