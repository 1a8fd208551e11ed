"""Accounts and sync state, typed settings, and the keyring secret store against an in-memory backend."""

from __future__ import annotations

from collections.abc import Iterator

import keyring
import keyring.backend
import keyring.errors
import pytest
import sqlite_utils

from storage.accounts import AccountRepo, SyncStateRepo
from storage.errors import SecretStoreUnavailable
from storage.rows import Health
from storage.secrets import KeyringSecretStore
from storage.settings import AGENT_NAME, FIRST_RESPONSE_MINUTES, WARN_FRACTION, SettingsRepo

T0 = 1_767_225_600


def test_account_add_is_idempotent_and_creates_sync_state(db: sqlite_utils.Database) -> None:
    repo = AccountRepo(db)
    a = repo.add(kind="mastodon", handle="care", base_url="https://m.example", now=T0)
    b = repo.add(kind="mastodon", handle="care", base_url="https://m.example", now=T0 + 10)
    assert a == b
    assert SyncStateRepo(db).get(a.id).cursor is None
    repo.set_health(a.id, Health.AUTH_EXPIRED, "token revoked")
    got = repo.get(a.id)
    assert got is not None and got.health is Health.AUTH_EXPIRED and got.health_reason == "token revoked"


def test_accounts_table_has_no_token_column(db: sqlite_utils.Database) -> None:
    columns = {c.name for c in db["accounts"].columns}
    assert not {c for c in columns if "token" in c or "secret" in c or "password" in c}


def test_sync_state_cursor_round_trip_and_failures(db: sqlite_utils.Database) -> None:
    account = AccountRepo(db).add(kind="mastodon", handle="care", base_url="x", now=T0)
    state = SyncStateRepo(db)
    state.record_success(account.id, cursor={"min_id": "42"}, at=T0, next_attempt_at=T0 + 30)
    assert state.get(account.id).cursor == {"min_id": "42"}
    assert state.record_failure(account.id, error="boom", next_attempt_at=T0 + 60) == 1
    assert state.record_failure(account.id, error="boom", next_attempt_at=T0 + 120) == 2
    got = state.get(account.id)
    assert (got.consecutive_failures, got.next_attempt_at, got.last_error) == (2, T0 + 120, "boom")
    state.record_success(account.id, cursor=None, at=T0 + 200, next_attempt_at=T0 + 230)
    got = state.get(account.id)
    assert got.cursor == {"min_id": "42"} and got.consecutive_failures == 0


def test_settings_are_typed_with_defaults_and_ranges(db: sqlite_utils.Database) -> None:
    settings = SettingsRepo(db)
    assert settings.get(FIRST_RESPONSE_MINUTES) == 30
    settings.set(AGENT_NAME, "Ana")
    settings.set(WARN_FRACTION, 0.3)
    assert settings.get(AGENT_NAME) == "Ana" and settings.get(WARN_FRACTION) == 0.3
    with pytest.raises(ValueError, match="between"):
        settings.set(FIRST_RESPONSE_MINUTES, 0)
    with pytest.raises(TypeError):
        settings.set(FIRST_RESPONSE_MINUTES, "30")  # type: ignore[arg-type]
    db.conn.execute("INSERT INTO settings VALUES ('sla.first_response_minutes', 'not json')")
    assert settings.get(FIRST_RESPONSE_MINUTES) == 30


class MemoryKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.values.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.values[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.values:
            raise keyring.errors.PasswordDeleteError("not found")
        del self.values[(service, username)]


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    old = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(old)


def test_keyring_store_round_trip(memory_keyring: MemoryKeyring) -> None:
    store = KeyringSecretStore(service="care-console-test")
    store.set("mastodon:1", "s3cret")
    assert store.get("mastodon:1") == "s3cret"
    assert memory_keyring.values == {("care-console-test", "mastodon:1"): "s3cret"}
    store.delete("mastodon:1")
    store.delete("mastodon:1")  # deleting twice is fine
    assert store.get("mastodon:1") is None
    assert store.usable()


def test_keyring_without_backend_raises_unavailable() -> None:
    from keyring.backends import fail

    old = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        store = KeyringSecretStore()
        assert not store.usable()
        with pytest.raises(SecretStoreUnavailable, match="keyring"):
            store.set("mastodon:1", "x")
    finally:
        keyring.set_keyring(old)
