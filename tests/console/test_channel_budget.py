"""channels.base.carrying_budget: a fetch's batch and its error carry the budget the channel's last answer left."""

from __future__ import annotations

from typing import Any

import pytest

from console.channels.base import Batch, RateLimitInfo, carrying_budget
from console.channels.errors import Transient

BEFORE = RateLimitInfo(limit=300, remaining=300, reset_at=None)
AFTER = RateLimitInfo(limit=300, remaining=12, reset_at=1_700_000_900.0)


class _Channel:
    """A fetch that changes the budget as a channel's answer would, then returns or fails."""

    def __init__(self, fail: bool) -> None:
        self.budget = BEFORE
        self.fail = fail

    async def fetch(self) -> Batch:
        self.budget = AFTER
        if self.fail:
            raise Transient("example.test broke off GET /notifications")
        return Batch(items=[], next_cursor={"since": "7"})


def test_the_batch_carries_the_budget_read_after_the_fetch(arun: Any) -> None:
    channel = _Channel(fail=False)
    batch = arun(carrying_budget(channel.fetch(), lambda: channel.budget))
    assert batch.rate_limit == AFTER
    assert batch.next_cursor == {"since": "7"}


def test_a_failed_fetch_raises_with_the_budget_it_left(arun: Any) -> None:
    channel = _Channel(fail=True)
    with pytest.raises(Transient) as raised:
        arun(carrying_budget(channel.fetch(), lambda: channel.budget))
    assert raised.value.rate_limit == AFTER
