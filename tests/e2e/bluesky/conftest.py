"""One reference AT Protocol network per test session; every test makes its own accounts on it."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import pytest

from tests.e2e.bluesky.network import Customer, ReferenceNetwork, installed_problem

_ACCOUNTS = itertools.count(1)


@pytest.fixture(scope="session")
def reference_network() -> Iterator[ReferenceNetwork]:
    """PLC, PDS and AppView on loopback, stopped (and their PostgreSQL schemas dropped) after the session.

    Not installed: skipped with the reason outside CI, a failure in CI (``CI=true``), where the Makefile
    installs it first. A network that is installed but does not start is always a failure.
    """
    problem = installed_problem()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the Bluesky e2e tests, but {problem}", pytrace=False)
        pytest.skip(problem)
    with ReferenceNetwork() as network:
        yield network


@pytest.fixture
def new_account(reference_network: ReferenceNetwork) -> Iterator[Callable[[str], Customer]]:
    """Makes accounts with handles unique in the session: ``new_account("alice")`` -> ``alice-7.test``."""
    made: list[Customer] = []

    def make(name: str) -> Customer:
        customer = Customer.create(reference_network, f"{name}-{next(_ACCOUNTS)}.test")
        made.append(customer)
        return customer

    yield make
    for customer in made:
        customer.close()
