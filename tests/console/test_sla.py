"""SLA pure functions: planning, bands, next band change, countdown and age text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.sla.bands import Band, SlaPolicy, band, format_age, format_countdown, next_change
from storage.rows import DeadlineKind

T0 = 1_767_225_600


def test_policy_plans_defaults_from_post_time() -> None:
    policy = SlaPolicy()
    assert policy.plan(DeadlineKind.FIRST_RESPONSE, T0) == (T0 + 1800, T0 + 1800 - 450)
    assert policy.plan(DeadlineKind.NEXT_RESPONSE, T0) == (T0 + 3600, T0 + 3600 - 900)
    assert policy.plan(DeadlineKind.RESOLUTION, T0) == (T0 + 86400, T0 + 86400 - 21600)
    assert policy.plan(DeadlineKind.FOLLOW_UP, T0) is None


@pytest.mark.parametrize(
    ("now", "expected"),
    [(T0 - 1000, Band.OK), (T0 - 450, Band.WARNING), (T0 - 1, Band.WARNING), (T0, Band.BREACHED)],
)
def test_band_goes_ok_warning_breached(now: int, expected: Band) -> None:
    assert band(T0, T0 - 450, now) is expected


def test_band_none_without_deadline() -> None:
    assert band(None, None, T0) is Band.NONE


def test_next_change_points_at_warning_then_due_then_nothing() -> None:
    assert next_change(T0, T0 - 450, T0 - 1000) == T0 - 450
    assert next_change(T0, T0 - 450, T0 - 100) == T0
    assert next_change(T0, T0 - 450, T0 + 5) is None


@pytest.mark.parametrize(
    ("due", "now", "text"),
    [
        (T0 + 1799, T0, "29:59"),
        (T0 + 3900, T0, "1:05:00"),
        (T0 + 2 * 86400 + 3 * 3600, T0, "2d 03h"),
        (T0, T0, "+00:00"),
        (T0 - 252, T0, "+04:12"),
    ],
)
def test_format_countdown(due: int, now: int, text: str) -> None:
    assert format_countdown(due, now) == text


@given(st.integers(min_value=-(10**7), max_value=10**7))
def test_format_countdown_sign_matches_breach(offset: int) -> None:
    text = format_countdown(T0 + offset, T0)
    assert text.startswith("+") == (offset <= 0)


@pytest.mark.parametrize(("age", "text"), [(5, "now"), (240, "4 min"), (3 * 3600 + 5, "3 h"), (2 * 86400, "2 d")])
def test_format_age(age: int, text: str) -> None:
    assert format_age(T0 - age, T0) == text
