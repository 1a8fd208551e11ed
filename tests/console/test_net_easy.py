"""Net Easy math against the worked example of reference/metrics.md §3, groupings and the trend test."""

from __future__ import annotations

import pytest

from console.surveys.net_easy import (
    SurveyRecord,
    Trend,
    adjusted_wald,
    by_agent,
    by_channel,
    by_shift,
    by_template,
    net_easy,
    trend,
    wald,
)

# metrics.md §3: n = 20 with 12 easy, 5 neutral and 3 difficult.
EXAMPLE = [1] * 7 + [2] * 5 + [3] * 2 + [4] * 3 + [5, 6, 7]


def test_worked_example_score_and_intervals() -> None:
    figure = net_easy(EXAMPLE, sent=40)
    assert (figure.n, figure.easy, figure.neutral, figure.difficult) == (20, 12, 5, 3)
    assert figure.score == pytest.approx(45.0)
    assert figure.interval is not None
    assert round(figure.interval.centre) == 39
    assert (round(figure.interval.low), round(figure.interval.high)) == (8, 70)
    plain = wald(12, 5, 3)
    assert plain is not None
    assert round(plain.centre) == 45
    assert (round(plain.low), round(plain.high)) == (13, 77)
    assert figure.response_rate == pytest.approx(0.5)
    assert figure.low_sample  # n = 20 < 30


def test_formula_buckets_and_range() -> None:
    assert net_easy([1, 2]).score == 100.0
    assert net_easy([5, 6, 7]).score == -100.0
    assert net_easy([3, 4]).score == 0.0
    assert net_easy([1, 7, 4, 4]).score == 0.0
    empty = net_easy([], sent=5)
    assert empty.score is None and empty.interval is None
    assert empty.response_rate == 0.0
    assert net_easy([]).response_rate is None
    with pytest.raises(ValueError, match="1–7"):
        net_easy([8])


def test_interval_is_clipped_to_plus_minus_100() -> None:
    interval = adjusted_wald(3, 0, 0)
    assert interval is not None
    assert interval.high <= 100.0
    interval = adjusted_wald(0, 0, 2)
    assert interval is not None and interval.low >= -100.0


def test_low_sample_threshold() -> None:
    assert net_easy([1] * 29).low_sample
    assert not net_easy([1] * 30).low_sample
    assert not net_easy([1] * 5, min_n=5).low_sample


def test_trend_arrow_only_when_the_change_is_real() -> None:
    small_before = net_easy([1, 1, 2, 6, 7])
    small_after = net_easy([1, 1, 1, 2, 2])
    assert trend(small_before, small_after) is Trend.FLAT  # a big jump on tiny samples is noise
    before = net_easy([1] * 40 + [4] * 30 + [6] * 30)  # +10
    after = net_easy([1] * 70 + [4] * 20 + [6] * 10)  # +60
    assert trend(before, after) is Trend.UP
    assert trend(after, before) is Trend.DOWN
    assert trend(before, net_easy([1] * 42 + [4] * 28 + [6] * 30)) is Trend.FLAT
    assert trend(net_easy([]), after) is Trend.FLAT


def test_groupings_count_sent_and_answers_per_key() -> None:
    records = [
        SurveyRecord(1, 100, 1, channel="mastodon", agent="ana", shift_id=1, template_ids=(5,)),
        SurveyRecord(2, 101, 6, channel="mastodon", agent="ana", shift_id=1, template_ids=(5, 6)),
        SurveyRecord(3, 102, None, channel="bluesky", agent="bo", shift_id=2),
        SurveyRecord(4, 103, 2, channel="bluesky", agent="bo", shift_id=None, template_ids=(6,)),
    ]
    channels = by_channel(records)
    assert channels["mastodon"].score == 0.0 and channels["mastodon"].n == 2
    assert channels["bluesky"].n == 1 and channels["bluesky"].response_rate == pytest.approx(0.5)
    assert by_agent(records)["bo"].sent == 2
    shifts = by_shift(records)
    assert set(shifts) == {1, 2}
    assert shifts[2].n == 0 and shifts[2].score is None
    templates = by_template(records)
    assert templates[5].n == 2 and templates[6].n == 2
    assert templates[6].score == 0.0


def test_series_slices_the_period_and_keeps_empty_slices() -> None:
    from console.surveys.net_easy import series

    records = [SurveyRecord(i, 100 + i * 10, 1 if i % 2 else None) for i in range(10)]  # sent 100..190
    points = series(records, since=100, until=200, points=4)
    assert [(p.start, p.end) for p in points] == [(100, 125), (125, 150), (150, 175), (175, 200)]
    assert [p.figure.sent for p in points] == [3, 2, 3, 2]
    assert sum(p.figure.n for p in points) == 5
    assert series(records, since=200, until=200) == []
    assert all(p.figure.n == 0 for p in series(records, since=1000, until=2000, points=2))
