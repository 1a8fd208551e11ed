"""The agent's own keyboard shortcuts: overrides of the defaults, by action name, kept in the settings."""

from __future__ import annotations

import json
from collections.abc import Sequence

from storage.settings import Setting, SettingsRepo

#: JSON object ``{"triage_resolve": ["D"], ...}``; absent names keep their default keys.
KEY_OVERRIDES = Setting("keys.overrides", "{}", str)


class KeyMap:
    """Reads and saves shortcut overrides; without settings (tests, demo) they live for the session only."""

    def __init__(self, settings: SettingsRepo | None = None) -> None:
        self._settings = settings
        self._overrides = self._load()

    def _load(self) -> dict[str, list[str]]:
        if self._settings is None:
            return {}
        try:
            raw = json.loads(self._settings.get(KEY_OVERRIDES))
        except ValueError:
            return {}
        if not isinstance(raw, dict):
            return {}
        return {
            str(name): [str(k) for k in keys]
            for name, keys in raw.items()
            if isinstance(keys, list) and all(isinstance(k, str) for k in keys)
        }

    def overrides(self) -> dict[str, list[str]]:
        return {name: list(keys) for name, keys in self._overrides.items()}

    def keys(self, name: str, default: Sequence[str]) -> list[str]:
        """The keys of action ``name``: the agent's choice, else ``default``."""
        return list(self._overrides.get(name, default))

    def set(self, name: str, keys: Sequence[str]) -> None:
        """Use ``keys`` for action ``name`` from now on (an empty list removes its shortcut)."""
        self._overrides[name] = [k for k in keys if k]
        self._save()

    def reset(self, name: str) -> None:
        """Back to the default keys of action ``name``."""
        self._overrides.pop(name, None)
        self._save()

    def _save(self) -> None:
        if self._settings is not None:
            self._settings.set(KEY_OVERRIDES, json.dumps(self._overrides, sort_keys=True))
