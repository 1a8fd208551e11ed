"""Report charts drawn with matplotlib (Agg, no pyplot state, so safe in a worker thread) as PNG bytes."""

from __future__ import annotations

import io
import statistics
from collections.abc import Sequence
from datetime import tzinfo
from typing import TYPE_CHECKING

from console.reports.export.tables import local_datetime
from console.reports.summary import HourBucket, NetEasy

if TYPE_CHECKING:  # matplotlib is imported when a chart is drawn, not when the app starts
    from matplotlib.figure import Figure

BLUE = "#2563eb"
LIGHT_BLUE = "#93c5fd"
GREEN = "#16a34a"
RED = "#dc2626"
AMBER = "#d97706"
GREY = "#64748b"
INK = "#0f172a"
GRID = "#e2e8f0"
SIZE = (7.2, 2.5)
DPI = 150


def _figure(size: tuple[float, float] = SIZE) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _style(ax: object) -> None:
    from matplotlib.axes import Axes
    from matplotlib.ticker import MaxNLocator

    assert isinstance(ax, Axes)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(GRID)
    ax.tick_params(colors=GREY, labelsize=8)
    ax.yaxis.grid(True, color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def _empty(fig: Figure, message: str) -> bytes:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", color=GREY, fontsize=10, transform=ax.transAxes)
    return _png(fig)


def _hour_labels(hours: Sequence[HourBucket], tz: tzinfo | None) -> list[str]:
    labels = []
    for h in hours:
        when = local_datetime(h.start, tz)
        labels.append(when.strftime("%H:%M") if when else "")
    step = max(1, len(labels) // 12)
    return [lab if i % step == 0 else "" for i, lab in enumerate(labels)]


def volume_per_hour(hours: Sequence[HourBucket], tz: tzinfo | None) -> bytes:
    """Items received and replies sent per hour of the shift."""
    fig = _figure()
    if not hours or not any(h.received or h.replies for h in hours):
        return _empty(fig, "No items received or replies sent in this shift")
    ax = fig.add_subplot()
    _style(ax)
    xs = list(range(len(hours)))
    ax.bar([x - 0.2 for x in xs], [h.received for h in hours], width=0.4, color=BLUE, label="Received")
    ax.bar([x + 0.2 for x in xs], [h.replies for h in hours], width=0.4, color=LIGHT_BLUE, label="Replies sent")
    ax.set_xticks(xs, _hour_labels(hours, tz))
    ax.legend(frameon=False, fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2)
    return _png(fig)


def sla_over_shift(hours: Sequence[HourBucket], tz: tzinfo | None) -> bytes:
    """Deadlines met and breached per hour."""
    fig = _figure()
    if not hours or not any(h.met or h.breached for h in hours):
        return _empty(fig, "No deadline was met or breached in this shift")
    ax = fig.add_subplot()
    _style(ax)
    xs = list(range(len(hours)))
    met = [h.met for h in hours]
    ax.bar(xs, met, width=0.7, color=GREEN, label="Met")
    ax.bar(xs, [h.breached for h in hours], width=0.7, bottom=met, color=RED, label="Breached")
    ax.set_xticks(xs, _hour_labels(hours, tz))
    ax.legend(frameon=False, fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2)
    return _png(fig)


def first_response_distribution(samples: Sequence[int], target_s: int | None = 1800) -> bytes:
    """Histogram of first-response times in minutes, with the median and the target."""
    fig = _figure()
    if not samples:
        return _empty(fig, "No first responses in this shift")
    ax = fig.add_subplot()
    _style(ax)
    minutes = sorted(s / 60.0 for s in samples)
    top = max(minutes[-1], (target_s or 0) / 60.0) * 1.05 or 1.0
    bins = min(30, max(5, len(minutes) // 3))
    ax.hist(minutes, bins=bins, range=(0, top), color=BLUE, edgecolor="white", linewidth=0.6)
    median = statistics.median(minutes)
    ax.axvline(median, color=INK, linewidth=1.2, linestyle="--", label=f"Median {int(median)} min")
    if target_s:
        ax.axvline(target_s / 60.0, color=RED, linewidth=1.2, label=f"Target {target_s / 60:.0f} min")
    ax.set_xlabel("Minutes to first response", color=GREY, fontsize=8)
    ax.set_ylabel("Items", color=GREY, fontsize=8)
    ax.legend(frameon=False, fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2)
    return _png(fig)


def net_easy_by(groups: Sequence[tuple[str, NetEasy]], *, what: str = "channel") -> bytes:
    """Net Easy per group (channel or agent) with its 95% interval and n."""
    fig = _figure((7.2, max(1.6, 0.55 * len(groups) + 0.9)))
    scored = [(label, ne) for label, ne in groups if ne.score is not None]
    if not scored:
        return _empty(fig, f"No survey answers yet: Net Easy per {what} appears with the first answers")
    ax = fig.add_subplot()
    _style(ax)
    ax.yaxis.grid(False)
    ax.xaxis.grid(True, color=GRID, linewidth=0.8)
    ys = list(range(len(scored)))
    scores = [float(ne.score or 0.0) for _l, ne in scored]
    colors = [GREEN if s >= 30 else AMBER if s >= 0 else RED for s in scores]
    lows = [max(0.0, s - (ne.low if ne.low is not None else s)) for s, (_l, ne) in zip(scores, scored, strict=True)]
    highs = [max(0.0, (ne.high if ne.high is not None else s) - s) for s, (_l, ne) in zip(scores, scored, strict=True)]
    ax.barh(ys, scores, color=colors, height=0.55)
    ax.errorbar(scores, ys, xerr=[lows, highs], fmt="none", ecolor=INK, capsize=3, linewidth=1)
    ax.set_yticks(ys, [f"{label}  (n={ne.n})" for label, ne in scored])
    ax.set_xlim(-100, 100)
    ax.axvline(0, color=GREY, linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("Net Easy (−100 … +100), bars show the 95% interval", color=GREY, fontsize=8)
    return _png(fig)


def bars(labels: Sequence[str], values: Sequence[float], *, ylabel: str, color: str = BLUE) -> bytes:
    """A simple bar chart (review: items per agent, SLA met % per agent)."""
    fig = _figure()
    if not labels:
        return _empty(fig, "No data")
    ax = fig.add_subplot()
    _style(ax)
    ax.bar(range(len(labels)), values, color=color, width=0.6)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel(ylabel, color=GREY, fontsize=8)
    return _png(fig)
