"""Shared fixtures: offscreen Qt before any Qt import, an in-memory database, a fake clock, secrets."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import sqlite_utils
from hypothesis import HealthCheck, settings

from console.ports import MemorySecretStore
from storage.db import open_database
from tests.fakes.clock import FakeClock
from tests.team_pg import team_pg, team_pg_server  # noqa: F401 (fixtures: a real PostgreSQL schema per test)

# CI runs on a 2-core machine shared with Qt and SQLite work: no per-example deadline (timing is bench/'s job,
# never a test's), and a fixed seed there so that a run is reproducible; locally, new examples every run.
settings.register_profile(
    "ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")

T = TypeVar("T")


@pytest.fixture
def db() -> Iterator[sqlite_utils.Database]:
    database = open_database(None)
    yield database
    database.conn.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def secrets() -> MemorySecretStore:
    return MemorySecretStore()


def run_coro(coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
    """Run a coroutine to completion on a fresh plain asyncio loop (console and storage tests)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture
def arun() -> Any:
    return run_coro
