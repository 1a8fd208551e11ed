"""console.model.event_data: the one reader of an event's ``data`` column (the SLA engine, our replies, summaries)."""

from __future__ import annotations

import pytest

from console.model import event_data


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('{"deadline": "first_response", "by_message": 7}', {"deadline": "first_response", "by_message": 7}),
        ("", {}),
        ("not json", {}),
        ('["a", "list"]', {}),
        ("42", {}),
    ],
    ids=["object", "empty", "not-json", "list", "number"],
)
def test_event_data_is_a_dict_or_empty(data: str, expected: dict[str, object]) -> None:
    assert event_data(data) == expected
