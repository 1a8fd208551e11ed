"""Recorded fixtures from ../shared: a missing folder skips outside CI and fails in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import shared_fixtures


def test_recorded_fixtures_missing_skip_outside_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared_fixtures, "ROOT", tmp_path)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"\.\./shared/fixtures/mastodon"):
        shared_fixtures.recorded("mastodon", "x.json")


def test_recorded_fixtures_missing_fail_in_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared_fixtures, "ROOT", tmp_path)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        shared_fixtures.recorded("mastodon", "x.json")


def test_recorded_fixtures_read_when_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bluesky").mkdir()
    (tmp_path / "bluesky" / "page.json").write_text('{"cursor": "c1", "items": [1, 2]}', encoding="utf-8")
    monkeypatch.setattr(shared_fixtures, "ROOT", tmp_path)
    assert shared_fixtures.recorded("bluesky", "page.json") == {"cursor": "c1", "items": [1, 2]}
