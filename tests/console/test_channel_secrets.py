"""channels.base.read_secret: a secret store that cannot be read is a credential the connector cannot use."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from console.channels.base import AccountRef, read_secret
from console.channels.errors import AuthExpired
from console.channels.facebook import FacebookConnector
from console.channels.mastodon import MastodonConnector
from console.ports import MemorySecretStore
from tests.fakes.clock import FakeClock


class LockedStore(MemorySecretStore):
    """A keyring whose backend refuses to be read (a locked collection)."""

    def get(self, key: str) -> str | None:
        raise RuntimeError(f"collection locked, {key} not read")


def test_the_stored_value_is_returned(arun: Any) -> None:
    store = MemorySecretStore()
    store.set("mastodon:3", "tok-3")
    assert arun(read_secret(store, "mastodon:3", unreadable="Could not read")) == "tok-3"
    assert arun(read_secret(store, "mastodon:4", unreadable="Could not read")) is None


def test_a_store_that_fails_becomes_auth_expired_with_the_sentence_first(arun: Any) -> None:
    with pytest.raises(AuthExpired, match=r"^Could not read the Page token: collection locked, facebook:9 not read$"):
        arun(read_secret(LockedStore(), "facebook:9", unreadable="Could not read the Page token"))


@pytest.mark.parametrize(
    ("make", "sentence"),
    [
        (FacebookConnector, r"^Could not read the Page token: collection locked"),
        (MastodonConnector, r"^Could not read the access token for brand on 127\.0\.0\.1:9: collection locked"),
    ],
)
def test_a_connector_with_a_locked_store_says_its_credential_cannot_be_read(
    arun: Any, make: Any, sentence: str
) -> None:
    account = AccountRef(9, "x", "brand", "http://127.0.0.1:9")

    async def verify() -> None:
        async with httpx.AsyncClient() as client:
            await make(client, account=account, secrets=LockedStore(), clock=FakeClock()).verify()

    with pytest.raises(AuthExpired, match=sentence):
        arun(verify())
