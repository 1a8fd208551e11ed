"""OAuth desktop flow against a fake authorization server: PKCE, state, loopback listener, clear failures."""

from __future__ import annotations

import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from console.accounts.oauth import OAuthClient, OAuthError, authorize, pkce_pair
from tests.fakes.clock import FakeClock
from tests.fakes.oauth_server import FakeAuthServer

T = TypeVar("T")
Arun = Callable[[Awaitable[T]], T]


@pytest.fixture
def auth() -> Iterator[FakeAuthServer]:
    with FakeAuthServer() as server:
        yield server


def browser(visited: list[str]) -> Callable[[str], bool]:
    """Plays the user's browser: loads the consent page, follows the redirect to the app's listener."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def open_url(url: str) -> bool:
        visited.append(url)
        with opener.open(url, timeout=5) as response:
            response.read()
        return True

    return open_url


def client_for(auth: FakeAuthServer) -> OAuthClient:
    return OAuthClient(
        name="Fake",
        authorize_url=auth.base_url + "/authorize",
        token_url=auth.base_url + "/token",
        client_id="client-abc",
        scopes=("tweet.read", "offline.access"),
    )


def run(auth: FakeAuthServer, clock: FakeClock, opener: Callable[[str], object], *, wait: float = 5.0) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient(trust_env=False, timeout=2.0) as http:
            return await authorize(client_for(auth), http, open_browser=opener, clock=clock, wait_seconds=wait)

    return go()


def test_pkce_pair() -> None:
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128 and "=" not in challenge and len(challenge) == 43


def test_full_flow(auth: FakeAuthServer, clock: FakeClock, arun: Arun[Any]) -> None:
    visited: list[str] = []
    tokens = arun(run(auth, clock, browser(visited)))
    assert tokens.access_token == "access-1" and tokens.refresh_token == "refresh-1"
    assert tokens.expires_at == clock.now() + 7200
    query = auth.authorize_queries[0]
    assert query["code_challenge_method"] == "S256" and query["scope"] == "tweet.read offline.access"
    assert query["redirect_uri"].startswith("http://127.0.0.1:") and query["redirect_uri"].endswith("/callback")
    assert len(query["state"]) >= 24


def test_denied_consent(auth: FakeAuthServer, clock: FakeClock, arun: Arun[Any]) -> None:
    auth.deny = True
    with pytest.raises(OAuthError, match="not granted"):
        arun(run(auth, clock, browser([])))


def test_wrong_state(auth: FakeAuthServer, clock: FakeClock, arun: Arun[Any]) -> None:
    auth.tamper_state = True
    with pytest.raises(OAuthError, match="did not match"):
        arun(run(auth, clock, browser([])))
    assert auth.pending  # the code was never exchanged


def test_timeout(auth: FakeAuthServer, clock: FakeClock, arun: Arun[Any]) -> None:
    with pytest.raises(OAuthError, match="not completed"):
        arun(run(auth, clock, lambda url: True, wait=0.2))


def test_no_browser(auth: FakeAuthServer, clock: FakeClock, arun: Arun[Any]) -> None:
    with pytest.raises(OAuthError, match="open this address"):
        arun(run(auth, clock, lambda url: False))
