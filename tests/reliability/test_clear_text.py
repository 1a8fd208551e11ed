"""Clear text (issue 20, sync 6): a bearer token never leaves this computer over plain http://, whatever the
address looks like, and a server on this computer cannot bounce it elsewhere with a redirect."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.channels.errors import Permanent
from console.channels.http import is_loopback, send
from tests.fakes.http_server import FakeHttpServer
from tests.reliability.conftest import TALLY, examples

T = TypeVar("T")
Arun = Callable[[Awaitable[T]], T]
TOKEN = "Bearer planted-token-7f3a"

_label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
#: Names that only look like this computer, addresses of other computers, and the odd spellings between them.
_hosts = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
    st.lists(_label, min_size=1, max_size=3).map(lambda parts: ".".join([*parts, "example"])),
    st.sampled_from(["localhost.evil.example", "127.0.0.1.nip.example", "0.0.0.0", "[::ffff:8.8.8.8]", "10.0.0.1"]),
).filter(lambda host: not is_loopback(host))


async def _get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(2.0)) as client:
        return await send(client, "GET", url, host="target", headers={"Authorization": TOKEN})


@settings(max_examples=examples(60))
@given(host=_hosts, port=st.one_of(st.none(), st.integers(1, 65535)))
def test_plain_http_to_any_other_computer_is_refused_before_connecting(host: str, port: int | None) -> None:
    url = f"http://{host}{'' if port is None else f':{port}'}/api/v1/notifications"
    with pytest.raises(Permanent, match=r"plain http://"):
        asyncio.run(_get(url))  # refused before any name is resolved or socket opened: no network needed here
    TALLY["clear text: other computers' plain http:// addresses refused before connecting"] += 1


def test_plain_http_on_this_computer_carries_the_token_and_no_redirect_takes_it_elsewhere(arun: Arun[Any]) -> None:
    with FakeHttpServer() as server:
        server.reply(200, json=[])
        server.reply(302, headers={"Location": "http://collector.example/steal"})
        assert arun(_get(server.base_url + "/api/v1/notifications")).json() == []
        bounced = arun(_get(server.base_url + "/api/v1/notifications"))
    assert bounced.status_code == 302  # not followed: the token never reaches collector.example
    assert [r.headers["authorization"] for r in server.requests] == [TOKEN, TOKEN]
    TALLY["clear text: redirects away from this computer not followed"] += 1
