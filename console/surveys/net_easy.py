"""Net Easy arithmetic: the score, its adjusted-Wald interval, response rate, groupings and a two-sample test."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, TypeVar

__all__ = [
    "MIN_N",
    "Interval",
    "NetEasy",
    "SurveyRecord",
    "Trend",
    "TrendPoint",
    "adjusted_wald",
    "by_agent",
    "by_channel",
    "by_shift",
    "by_template",
    "group",
    "net_easy",
    "series",
    "trend",
    "wald",
]

#: Below this many answers the score is shown greyed as "too few answers" (metrics.md: "low sample" when n < 30).
MIN_N: Final = 30
Z95: Final = 1.959963984540054

K = TypeVar("K", bound=Hashable)


class Trend(StrEnum):
    """The arrow next to a score: only UP or DOWN when a two-sample test says the change is real."""

    UP = "up"
    DOWN = "down"
    FLAT = "flat"


@dataclass(frozen=True, slots=True)
class Interval:
    """A 95% interval in points (−100…+100) around ``centre``."""

    centre: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class NetEasy:
    """One Net Easy figure with everything needed to read it honestly.

    ``score`` is ``100 × (easy − difficult) / n`` (None without answers); ``interval`` the adjusted-Wald
    95% interval; ``response_rate`` answers / surveys sent (None when nothing was sent).
    """

    n: int
    easy: int
    neutral: int
    difficult: int
    sent: int
    score: float | None
    interval: Interval | None
    response_rate: float | None
    min_n: int = MIN_N

    @property
    def low_sample(self) -> bool:
        """Fewer answers than ``min_n``: show the score greyed with "too few answers"."""
        return self.n < self.min_n


@dataclass(frozen=True, slots=True)
class SurveyRecord:
    """One sent survey as the groupings see it; ``score`` is None while unanswered (or flagged)."""

    survey_id: int
    sent_at: int
    score: int | None
    channel: str = ""
    agent: str = ""
    shift_id: int | None = None
    template_ids: tuple[int, ...] = ()


def _bucket_counts(scores: Iterable[int]) -> tuple[int, int, int]:
    easy = neutral = difficult = 0
    for score in scores:
        if not 1 <= score <= 7:
            raise ValueError(f"a Net Easy answer is 1–7, not {score}")
        if score <= 2:
            easy += 1
        elif score <= 4:
            neutral += 1
        else:
            difficult += 1
    return easy, neutral, difficult


def _interval(easy: float, difficult: float, n: float) -> Interval:
    p_easy, p_difficult = easy / n, difficult / n
    centre = p_easy - p_difficult
    variance = max(p_easy + p_difficult - centre * centre, 0.0)
    margin = Z95 * math.sqrt(variance / n)
    return Interval(
        centre=100 * centre,
        low=max(-100.0, 100 * (centre - margin)),
        high=min(100.0, 100 * (centre + margin)),
    )


def wald(easy: int, neutral: int, difficult: int) -> Interval | None:
    """The plain Wald interval of ``NE = pE − pD`` (metrics.md §3); None without answers.

    Args:
        easy: answers 1–2.
        neutral: answers 3–4.
        difficult: answers 5–7.

    Returns:
        Centre (the raw score) and 95% bounds in points, clipped to ±100.
    """
    n = easy + neutral + difficult
    return None if n == 0 else _interval(easy, difficult, n)


def adjusted_wald(easy: int, neutral: int, difficult: int) -> Interval | None:
    """The adjusted-Wald 95% interval (Rocks 2016; MeasuringU): n+3, easy+0.75, difficult+0.75, clipped to ±100.

    Args:
        easy: answers 1–2.
        neutral: answers 3–4.
        difficult: answers 5–7.

    Returns:
        The adjusted centre and bounds in points; None without answers.
    """
    n = easy + neutral + difficult
    return None if n == 0 else _interval(easy + 0.75, difficult + 0.75, n + 3)


def net_easy(scores: Iterable[int], *, sent: int | None = None, min_n: int = MIN_N) -> NetEasy:
    """Net Easy of these answers: ``100 × (n[1–2] − n[5–7]) / n`` with n, interval and response rate.

    Args:
        scores: valid answers, each 1–7.
        sent: surveys sent in the same period and group (for the response rate); default: unknown.
        min_n: the "too few answers" threshold.

    Returns:
        The figure; ``score`` and ``interval`` are None when there is no answer.

    Raises:
        ValueError: a score outside 1–7.
    """
    easy, neutral, difficult = _bucket_counts(scores)
    n = easy + neutral + difficult
    sent_count = n if sent is None else sent
    return NetEasy(
        n=n,
        easy=easy,
        neutral=neutral,
        difficult=difficult,
        sent=sent_count,
        score=None if n == 0 else 100 * (easy - difficult) / n,
        interval=adjusted_wald(easy, neutral, difficult),
        response_rate=None if sent is None or sent == 0 else n / sent,
        min_n=min_n,
    )


def trend(before: NetEasy, after: NetEasy, *, z: float = Z95) -> Trend:
    """Did Net Easy really change from ``before`` to ``after``? A two-sample z-test on the adjusted estimates.

    Each response scores +1, 0 or −1, so Net Easy is a mean; the difference of two independent means is
    tested against its standard error (MeasuringU, *Sample Sizes for Comparing NPS*, with the adjusted-Wald
    counts so that small samples are not over-confident).

    Args:
        before: the earlier period.
        after: the later period.
        z: the two-sided critical value (1.96 for 95%).

    Returns:
        UP or DOWN only when the difference is significant; FLAT otherwise (including without answers).
    """
    if before.n == 0 or after.n == 0:
        return Trend.FLAT

    def mean_var(figure: NetEasy) -> tuple[float, float, float]:
        n = figure.n + 3
        p_easy, p_difficult = (figure.easy + 0.75) / n, (figure.difficult + 0.75) / n
        mean = p_easy - p_difficult
        return mean, max(p_easy + p_difficult - mean * mean, 0.0), n

    m1, v1, n1 = mean_var(before)
    m2, v2, n2 = mean_var(after)
    se = math.sqrt(v1 / n1 + v2 / n2)
    if se == 0:
        return Trend.FLAT
    statistic = (m2 - m1) / se
    if statistic > z:
        return Trend.UP
    if statistic < -z:
        return Trend.DOWN
    return Trend.FLAT


def group(
    records: Iterable[SurveyRecord], keys: Callable[[SurveyRecord], Iterable[K]], *, min_n: int = MIN_N
) -> dict[K, NetEasy]:
    """Net Easy per group; a record may count in several groups (a conversation that used two templates).

    Args:
        records: sent surveys of the period (answered or not: unanswered ones count as sent).
        keys: the groups a record belongs to.
        min_n: the "too few answers" threshold.

    Returns:
        One figure per group key, with the response rate of that group.
    """
    scores: dict[K, list[int]] = defaultdict(list)
    sent: dict[K, int] = defaultdict(int)
    for record in records:
        for key in keys(record):
            sent[key] += 1
            if record.score is not None:
                scores[key].append(record.score)
    return {key: net_easy(scores.get(key, ()), sent=count, min_n=min_n) for key, count in sent.items()}


def by_channel(records: Iterable[SurveyRecord], *, min_n: int = MIN_N) -> dict[str, NetEasy]:
    """Net Easy per channel kind ("mastodon", "bluesky", …)."""
    return group(records, lambda r: (r.channel,), min_n=min_n)


def by_agent(records: Iterable[SurveyRecord], *, min_n: int = MIN_N) -> dict[str, NetEasy]:
    """Net Easy per agent (who sent the survey)."""
    return group(records, lambda r: (r.agent,), min_n=min_n)


def by_shift(records: Iterable[SurveyRecord], *, min_n: int = MIN_N) -> dict[int, NetEasy]:
    """Net Easy per shift (surveys sent outside any shift are left out)."""
    return group(records, lambda r: () if r.shift_id is None else (r.shift_id,), min_n=min_n)


def by_template(records: Iterable[SurveyRecord], *, min_n: int = MIN_N) -> dict[int, NetEasy]:
    """Net Easy per template used in the surveyed conversation."""
    return group(records, lambda r: r.template_ids, min_n=min_n)


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """Net Easy of the surveys sent in ``[start, end)``."""

    start: int
    end: int
    figure: NetEasy


def series(
    records: Iterable[SurveyRecord], *, since: int, until: int, points: int = 8, min_n: int = MIN_N
) -> list[TrendPoint]:
    """Net Easy over equal slices of ``[since, until)`` for the trend chart (a slice without surveys has n = 0).

    Args:
        records: sent surveys (only those sent in the period count).
        since: start of the period (epoch seconds).
        until: end of the period, exclusive.
        points: how many slices.
        min_n: the "too few answers" threshold of each point.

    Returns:
        One point per slice, oldest first; empty for an empty period.
    """
    if until <= since or points < 1:
        return []
    width = max(1, -(-(until - since) // points))
    buckets: list[list[SurveyRecord]] = [[] for _ in range(points)]
    for record in records:
        if since <= record.sent_at < until:
            buckets[min(points - 1, (record.sent_at - since) // width)].append(record)
    out: list[TrendPoint] = []
    for index, bucket in enumerate(buckets):
        start = since + index * width
        if start >= until:
            break
        scores = [r.score for r in bucket if r.score is not None]
        out.append(TrendPoint(start, min(until, start + width), net_easy(scores, sent=len(bucket), min_n=min_n)))
    return out
