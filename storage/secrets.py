"""KeyringSecretStore: tokens in the OS keyring only; a missing backend becomes SecretStoreUnavailable."""

from __future__ import annotations

import keyring
import keyring.errors

from storage.errors import SecretStoreUnavailable

SERVICE = "care-console"


class KeyringSecretStore:
    """Satisfies console.ports.SecretStore structurally. Never pops UI; callers decide what to show."""

    def __init__(self, service: str = SERVICE) -> None:
        self._service = service

    def get(self, key: str) -> str | None:
        try:
            return keyring.get_password(self._service, key)
        except keyring.errors.KeyringError as exc:
            raise SecretStoreUnavailable(f"The OS keyring is not usable: {exc}") from exc

    def set(self, key: str, value: str) -> None:
        try:
            keyring.set_password(self._service, key, value)
        except keyring.errors.KeyringError as exc:
            raise SecretStoreUnavailable(f"The OS keyring is not usable: {exc}") from exc

    def delete(self, key: str) -> None:
        try:
            keyring.delete_password(self._service, key)
        except keyring.errors.PasswordDeleteError:
            return
        except keyring.errors.KeyringError as exc:
            raise SecretStoreUnavailable(f"The OS keyring is not usable: {exc}") from exc

    def backend_name(self) -> str:
        backend = keyring.get_keyring()
        return f"{type(backend).__module__}.{type(backend).__name__}"

    def usable(self) -> bool:
        """True when a real backend answers (the fail backend raises on every call)."""
        try:
            keyring.get_password(self._service, "__probe__")
        except keyring.errors.KeyringError:
            return False
        return True
