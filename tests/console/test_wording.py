"""Counted nouns: "1 reply", never "1 replies" (issue 19 §16)."""

from __future__ import annotations

import pytest

from console.wording import count, plural


@pytest.mark.parametrize(
    ("n", "noun", "expected"),
    [
        (1, "reply", "1 reply"),
        (2, "reply", "2 replies"),
        (0, "reply", "0 replies"),
        (1, "summary", "1 summary"),
        (3, "summary", "3 summaries"),
        (1, "breach", "1 breach"),
        (2, "breach", "2 breaches"),
        (1_204, "item", "1,204 items"),
        (1, "day", "1 day"),
        (2, "day", "2 days"),
    ],
)
def test_count_agrees_with_the_number(n: int, noun: str, expected: str) -> None:
    assert count(n, noun) == expected


def test_count_takes_an_irregular_plural() -> None:
    assert count(2, "follow-up", "follow-ups") == "2 follow-ups"
    assert plural("status") == "statuses"
