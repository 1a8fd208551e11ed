"""Protocols the core needs from the outside world (Clock, SecretStore), and the system clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """UTC epoch seconds."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class SecretStore(Protocol):
    """Tokens live only here (the OS keyring in production), keyed ``"<channel>:<account>"``."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str) -> None: ...

    def delete(self, key: str) -> None: ...


class MemorySecretStore:
    """A session-only store: used when no keyring backend is usable, and in tests."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self._values.get(key)

    def set(self, key: str, value: str) -> None:
        self._values[key] = value

    def delete(self, key: str) -> None:
        self._values.pop(key, None)


class LazySecretStore:
    """A SecretStore that opens its backend on first use.

    Finding the OS keyring's backend takes about 100 ms, which the app spends after its window is on screen.
    """

    def __init__(self, open_store: Callable[[], SecretStore]) -> None:
        self._open_store = open_store
        self._store: SecretStore | None = None

    @property
    def store(self) -> SecretStore:
        """The backend, opened now if it was not yet."""
        if self._store is None:
            self._store = self._open_store()
        return self._store

    def get(self, key: str) -> str | None:
        return self.store.get(key)

    def set(self, key: str, value: str) -> None:
        self.store.set(key, value)

    def delete(self, key: str) -> None:
        self.store.delete(key)
