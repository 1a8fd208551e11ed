"""The sandbox as a standard Mastodon server: the same character counter as the client, and a standard client's
login and basic flows (Mastodon.py over a real loopback socket)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from mastodon import Mastodon, MastodonAPIError, MastodonIllegalArgumentError, MastodonNotFoundError

from console.channels.mastodon import reply_length
from console.sandbox import SandboxServer
from console.sandbox.server import countable_length
from tests.fakes.clock import FakeClock


@pytest.mark.parametrize(
    "text",
    [
        unicodedata.normalize("NFD", "한국어 고객 지원"),  # decomposed Hangul: jamo sequences, one syllable each
        "क्षत्रिय स्त्री",  # Devanagari conjuncts (virama joins consonants)
        "நன்றி",  # Tamil
        "👩\u200d👩\u200d👧 👍🏽 🇩🇪",  # ZWJ family, skin tone, flag
        "e\u0301te\u0301",
    ],
)
def test_sandbox_counts_characters_like_the_client(text: str) -> None:
    assert countable_length(text) == reply_length(text, characters_reserved_per_url=23)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(exclude_characters="@:/.\r\x00"), max_size=60))
def test_sandbox_and_client_never_disagree_on_plain_text(text: str) -> None:
    assert countable_length(text) == reply_length(text, characters_reserved_per_url=23)


# ---------------------------------------------------------------------------------------------------- login
@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[SandboxServer]:
    server = SandboxServer(seed=1, rate_per_minute=0.0, backlog=3, clock=clock)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.trust_env = False  # no proxy variable may reroute loopback
        yield http


def _client(sandbox: SandboxServer, session: requests.Session, **kwargs: Any) -> Mastodon:
    # The default version check reads GET /api/v1/instance, like every standard client's first call.
    return Mastodon(api_base_url=sandbox.base_url, session=session, request_timeout=5, **kwargs)


def test_standard_client_reads_the_instance_before_signing_in(
    sandbox: SandboxServer, session: requests.Session
) -> None:
    instance = _client(sandbox, session).instance_v1()
    assert instance["uri"] and instance["version"].startswith("4.")
    assert instance["configuration"]["statuses"]["max_characters"] == 500


def test_standard_client_registers_and_signs_in_with_a_password(
    sandbox: SandboxServer, session: requests.Session
) -> None:
    client_id, client_secret = Mastodon.create_app(
        "Care test", api_base_url=sandbox.base_url, scopes=["read", "write"], session=session, request_timeout=5
    )
    api = _client(sandbox, session, client_id=client_id, client_secret=client_secret)
    token = api.log_in("care", "any password", scopes=["read", "write"])
    assert token
    assert api.account_verify_credentials()["acct"] == "care"
    with pytest.raises(MastodonIllegalArgumentError, match="invalid_grant"):
        _client(sandbox, session, client_id=client_id, client_secret=client_secret).log_in(
            "someone-else", "x", scopes=["read", "write"]
        )
    with pytest.raises(MastodonIllegalArgumentError, match="invalid_client"):
        _client(sandbox, session, client_id=client_id, client_secret="wrong").log_in(
            "care", "x", scopes=["read", "write"]
        )


def test_standard_client_signs_in_with_an_authorization_code(sandbox: SandboxServer, session: requests.Session) -> None:
    oob = "urn:ietf:wg:oauth:2.0:oob"
    client_id, client_secret = Mastodon.create_app(
        "Care test", api_base_url=sandbox.base_url, scopes=["read", "write"], redirect_uris=oob, session=session
    )
    api = _client(sandbox, session, client_id=client_id, client_secret=client_secret)
    page = session.get(api.auth_request_url(scopes=["read", "write"], redirect_uris=oob), timeout=5)
    assert page.status_code == 200
    code = page.text.split("<code>")[1].split("</code>")[0]
    assert api.log_in(code=code, redirect_uri=oob, scopes=["read", "write"])
    assert api.account_verify_credentials()["acct"] == "care"
    with pytest.raises(MastodonIllegalArgumentError, match="invalid_grant"):  # a code works once
        _client(sandbox, session, client_id=client_id, client_secret=client_secret).log_in(
            code=code, redirect_uri=oob, scopes=["read", "write"]
        )


def test_standard_client_reads_mentions_replies_and_deletes_its_reply(
    sandbox: SandboxServer, session: requests.Session
) -> None:
    client_id, client_secret = Mastodon.create_app(
        "Care test", api_base_url=sandbox.base_url, scopes=["read", "write"], session=session
    )
    api = _client(sandbox, session, client_id=client_id, client_secret=client_secret)
    api.log_in("care", "secret", scopes=["read", "write"])
    mentions = api.notifications(types=["mention"])
    assert len(mentions) == 3
    status = mentions[0]["status"]
    reply = api.status_post(f"@{status['account']['acct']} Thanks, we are on it.", in_reply_to_id=status["id"])
    assert [s["id"] for s in api.status_context(status["id"])["descendants"]] == [reply["id"]]
    deleted = api.status_delete(reply["id"])
    assert deleted["text"].endswith("Thanks, we are on it.")
    assert api.status_context(status["id"])["descendants"] == []
    with pytest.raises(MastodonNotFoundError):
        api.status(reply["id"])
    with pytest.raises(MastodonAPIError):  # a customer's status is not ours to delete
        api.status_delete(status["id"])
    assert not [s for s in sandbox.statuses_posted() if s["id"] == reply["id"]]
