"""AccountService: credentials verified before saving, kept only in the secret store; remove keeps or deletes items."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
import sqlite_utils

from console.accounts.service import AccountError, AccountService
from console.ports import MemorySecretStore
from console.sla.bands import SlaPolicy
from console.sync.manual import ManualIntake
from storage.account_admin import AccountAdmin
from storage.accounts import AccountRepo
from storage.errors import SecretStoreUnavailable
from storage.mentions import MentionRepo, QueueView
from storage.rows import AccountRow, Health
from tests.fakes.bluesky_server import FakeBlueskyServer
from tests.fakes.clock import FakeClock
from tests.fakes.discourse_server import FakeDiscourseServer
from tests.fakes.oauth_server import FakeAuthServer
from tests.fakes.x_server import FakeXServer
from tests.fakes.youtube_server import CHANNEL, FakeYouTubeServer

T = TypeVar("T")
Arun = Callable[[Awaitable[T]], T]


@pytest.fixture
def bluesky() -> Iterator[FakeBlueskyServer]:
    with FakeBlueskyServer() as server:
        yield server


def service_call(
    db: sqlite_utils.Database,
    secrets: MemorySecretStore,
    clock: FakeClock,
    added: list[AccountRow],
    body: Callable[[AccountService], Awaitable[T]],
) -> Awaitable[T]:
    async def go() -> T:
        async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
            service = AccountService(AccountRepo(db), AccountAdmin(db), secrets, clock, client, on_added=added.append)
            return await body(service)

    return go()


def test_add_bluesky_verifies_then_keeps_password_and_session(
    db: sqlite_utils.Database, secrets: MemorySecretStore, clock: FakeClock, bluesky: FakeBlueskyServer, arun: Arun[Any]
) -> None:
    added: list[AccountRow] = []

    async def body(service: AccountService) -> Any:
        with pytest.raises(AccountError, match="not accepted"):
            await service.add("bluesky", handle="brand.test", base_url=bluesky.base_url, secret="wrong")
        assert service.list() == []  # nothing saved
        view = await service.add("bluesky", handle="@brand.test", base_url=bluesky.base_url, secret="app-pass-1234")
        assert (await service.verify(view.id)).external_id == "did:plc:brand"
        return view

    view = arun(service_call(db, secrets, clock, added, body))
    assert view.kind == "bluesky" and view.handle == "brand.test" and view.label == "Bluesky"
    assert secrets.get(f"bluesky:{view.id}") == "app-pass-1234"
    assert json.loads(secrets.get(f"bluesky:{view.id}:session") or "{}")["did"] == "did:plc:brand"
    assert [row.id for row in added] == [view.id]
    # The database never sees the secret.
    dump = "\n".join(db.conn.iterdump())
    assert "app-pass-1234" not in dump and "refresh-" not in dump


def test_add_discourse_and_bad_input(
    db: sqlite_utils.Database, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    added: list[AccountRow] = []
    with FakeDiscourseServer() as forum:

        async def body(service: AccountService) -> Any:
            with pytest.raises(AccountError, match="Unknown channel"):
                await service.add("myspace", handle="x", base_url=forum.base_url, secret="k")
            with pytest.raises(AccountError, match="server address"):
                await service.add("discourse", handle="brand", base_url="", secret="k")
            with pytest.raises(AccountError, match="api key"):
                await service.add("discourse", handle="brand", base_url=forum.base_url, secret="  ")
            return await service.add("discourse", handle="brand", base_url=forum.base_url, secret="admin-key-1")

        view = arun(service_call(db, secrets, clock, added, body))
    assert view.display_name == "Brand Support" and secrets.get(f"discourse:{view.id}") == "admin-key-1"


def test_remove_keeps_or_deletes_items(
    db: sqlite_utils.Database, secrets: MemorySecretStore, clock: FakeClock, bluesky: FakeBlueskyServer, arun: Arun[Any]
) -> None:
    added: list[AccountRow] = []
    intake = ManualIntake(MentionRepo(db), AccountRepo(db), clock, SlaPolicy().plan)
    intake.add(link="https://x.com/a/status/1", text="help")

    async def body(service: AccountService) -> Any:
        view = await service.add("bluesky", handle="brand.test", base_url=bluesky.base_url, secret="app-pass-1234")
        manual = service.find("manual:manual")
        assert manual.items == 1
        assert service.remove(view.id, delete_items=False) == 0
        assert secrets.get(f"bluesky:{view.id}") is None
        assert [v.kind for v in service.list()] == ["manual"]
        assert service.remove(manual.id, delete_items=True) == 1
        assert service.list() == []
        again = await service.add("bluesky", handle="brand.test", base_url=bluesky.base_url, secret="app-pass-1234")
        assert again.id == view.id and again.enabled  # re-adding brings the account back
        with pytest.raises(AccountError, match="No account"):
            service.find("nobody")

    arun(service_call(db, secrets, clock, added, body))
    assert MentionRepo(db).queue_ids(QueueView.OPEN) == []


def test_verify_marks_health(
    db: sqlite_utils.Database, secrets: MemorySecretStore, clock: FakeClock, bluesky: FakeBlueskyServer, arun: Arun[Any]
) -> None:
    async def body(service: AccountService) -> Any:
        view = await service.add("bluesky", handle="brand.test", base_url=bluesky.base_url, secret="app-pass-1234")
        secrets.delete(f"bluesky:{view.id}:session")
        secrets.set(f"bluesky:{view.id}", "revoked")
        with pytest.raises(AccountError):
            await service.verify(view.id)
        assert service.find(str(view.id)).health is Health.AUTH_EXPIRED
        await service.replace_secret(view.id, "app-pass-1234")
        assert service.find(str(view.id)).health is Health.OK

    arun(service_call(db, secrets, clock, [], body))


def test_connect_youtube_with_browser_sign_in(
    db: sqlite_utils.Database, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def browser(url: str) -> bool:
        with opener.open(url, timeout=5) as response:
            response.read()
        return True

    with FakeYouTubeServer() as youtube, FakeAuthServer(client_id="gcid") as google:
        youtube.access.add("access-1")  # what the fake Google issues

        async def body(service: AccountService) -> Any:
            return await service.connect_youtube(
                "gcid",
                "not-really-secret",
                open_browser=browser,
                base_url=youtube.base_url,
                authorize_url=google.base_url + "/authorize",
                token_url=google.base_url + "/token",
            )

        view = arun(service_call(db, secrets, clock, [], body))
        assert google.authorize_queries[0]["access_type"] == "offline"
    assert view.kind == "youtube" and view.handle == CHANNEL and view.display_name == "Brand Channel"
    stored = json.loads(secrets.get(f"youtube:{view.id}") or "{}")
    assert stored["refresh_token"] == "refresh-1" and stored["client_secret"] == "not-really-secret"


def test_connect_x_with_browser_sign_in(
    db: sqlite_utils.Database, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def browser(url: str) -> bool:
        with opener.open(url, timeout=5) as response:
            response.read()
        return True

    with FakeXServer() as x:

        async def body(service: AccountService) -> Any:
            return await service.connect_x(
                "client-abc",
                open_browser=browser,
                base_url=x.base_url,
                authorize_url=x.base_url + "/i/oauth2/authorize",
                redirect_port=0,
            )

        view = arun(service_call(db, secrets, clock, [], body))
    assert view.kind == "x" and view.handle == "brand"
    stored = json.loads(secrets.get(f"x:{view.id}") or "{}")
    assert stored["client_id"] == "client-abc" and stored["refresh_token"].startswith("refresh-")


def test_connect_discourse_with_browser_sign_in(
    db: sqlite_utils.Database, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    def browser(url: str) -> bool:
        with httpx.Client(trust_env=False, follow_redirects=True, timeout=5.0) as client:
            client.get(url)
        return True

    added: list[AccountRow] = []
    with FakeDiscourseServer() as forum:

        async def body(service: AccountService) -> Any:
            forum.approve = False
            with pytest.raises(AccountError, match="sent no key back"):
                await service.connect_discourse_browser(forum.base_url, open_browser=browser, redirect_port=0)
            assert service.list() == []  # nothing saved
            forum.approve = True
            view = await service.connect_discourse_browser(forum.base_url, open_browser=browser, redirect_port=0)
            assert (await service.verify(view.id)).handle == "brand"  # the stored key, as the runtime reads it
            again = await service.connect_discourse_browser(forum.base_url, open_browser=browser, redirect_port=0)
            return view, again

        view, again = arun(service_call(db, secrets, clock, added, body))
        first_request, second_request = forum.key_requests[1:]
        last = forum.requests[-1]
    assert view.kind == "discourse" and view.handle == "brand" and view.display_name == "Brand Support"
    assert again.id == view.id and [row.id for row in added] == [view.id, view.id]
    stored = json.loads(secrets.get(f"discourse:{view.id}") or "{}")
    assert stored["user_api_key"] in forum.issued and forum.issued[stored["user_api_key"]] == stored["client_id"]
    # Signing in again reuses the client id, so the forum replaces the older key.
    assert second_request["client_id"] == first_request["client_id"] == stored["client_id"]
    assert last.headers["user-api-key"] == stored["user_api_key"]
    assert last.headers["user-api-client-id"] == stored["client_id"]
    assert stored["user_api_key"] not in "\n".join(db.conn.iterdump())


class BrokenKeyring(MemorySecretStore):
    """A secret store whose backend refuses writes (a locked or missing keyring)."""

    def set(self, key: str, value: str) -> None:
        raise SecretStoreUnavailable("The OS keyring is not usable: locked")


def test_keyring_refusal_saves_nothing(
    db: sqlite_utils.Database, clock: FakeClock, bluesky: FakeBlueskyServer, arun: Arun[Any]
) -> None:
    async def body(service: AccountService) -> Any:
        with pytest.raises(AccountError, match="OS keyring"):
            await service.add("bluesky", handle="brand.test", base_url=bluesky.base_url, secret="app-pass-1234")
        return service.list()

    assert arun(service_call(db, BrokenKeyring(), clock, [], body)) == []
    assert AccountRepo(db).list() == []


def test_checking_a_saved_account_whose_server_is_unreachable_says_so_in_words(
    db: sqlite_utils.Database, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    """Issue 19 #13: "Check" on a saved account names the cause (no connection), not a raw ConnectError."""
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    row = AccountRepo(db).add(kind="bluesky", handle="brand.test", base_url=f"http://127.0.0.1:{port}", now=0)
    secrets.set(f"bluesky:{row.id}", "app-pass-1234")

    async def body(service: AccountService) -> str:
        try:
            await service.verify(row.id)
        except AccountError as exc:
            return str(exc)
        return ""

    message = arun(service_call(db, secrets, clock, [], body))
    assert message.startswith("The server 127.0.0.1 could not be reached: check the address")
    assert "Error" not in message and "Nothing was saved" not in message
    account = AccountRepo(db).get(row.id)
    assert account is not None and account.health is Health.FAILING
