"""The supervisor's review: load many shift summaries, merge them per agent, channel and day, report."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any

from console.reports.export import charts
from console.reports.export.atomic import ExportError
from console.reports.export.codec import load_summary
from console.reports.export.report import (
    KIND_LABELS,
    LISTED_ROWS,
    NET_EASY_NOTE,
    Chart,
    Report,
    Section,
    Table,
    Tile,
    fmt_duration,
    fmt_money,
    fmt_net_easy_short,
    fmt_pct,
    fmt_when,
    net_easy_tile_note,
    short_handle,
    tone_pct,
)
from console.reports.export.tables import COLUMNS, local_datetime, write_xlsx
from console.reports.summary import (
    Breach,
    ChannelFigures,
    FirstResponse,
    HandoverItem,
    NetEasy,
    NetEasyScorer,
    ShiftSummary,
    first_response_figures,
    score_net_easy,
)
from console.wording import count

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class LoadProblem:
    path: str
    message: str


@dataclass
class Review:
    """Loaded summaries (each shift once), the files that could not be used and why, and repeats skipped."""

    summaries: list[ShiftSummary] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    def add_files(self, paths: Iterable[Path]) -> None:
        """Load more files; a broken or unknown-version file is reported and the rest still load."""
        seen = {s.key: src for s, src in zip(self.summaries, self.sources, strict=True)}
        for path in paths:
            try:
                summary = load_summary(Path(path))
            except ExportError as exc:
                self.problems.append(LoadProblem(str(path), str(exc)))
                continue
            if summary.key in seen:
                self.duplicates.append(f"{path}: the same shift as {seen[summary.key]}; loaded once.")
                continue
            seen[summary.key] = str(path)
            self.summaries.append(summary)
            self.sources.append(str(path))


def load_summaries(paths: Iterable[Path]) -> Review:
    review = Review()
    review.add_files(paths)
    return review


@dataclass(frozen=True)
class Group:
    """Merged figures of several shifts (an agent, a channel, a day, or everything)."""

    label: str
    shifts: int
    received: int
    handled: int
    resolved: int
    resolved_single_reply: int
    community: int
    still_open: int
    first_response: FirstResponse
    sla_met: int
    sla_breached: int
    sla_pct: float | None
    net_easy: NetEasy
    handling_s: int
    cost: float


BreachKey = tuple[str, int, str, int, int]


def breach_key(b: Breach) -> BreachKey:
    """One deadline's breach: a shift that inherits it lists it again, and a merge counts it once."""
    return (b.channel, b.mention_id, b.kind, b.due_at, b.breached_at)


def unique_breaches(summaries: Sequence[ShiftSummary]) -> list[tuple[str, Breach]]:
    """Every breach of these shifts once (as first listed, by the shift where it happened), oldest first."""
    out: dict[BreachKey, tuple[str, Breach]] = {}
    for s in sorted(summaries, key=lambda s: (s.shift.started_at, s.shift.agent, s.shift.id)):
        for b in s.breaches:
            key = breach_key(b)
            if key not in out or (out[key][1].inherited and not b.inherited):
                out[key] = (s.shift.agent, b)
    return sorted(out.values(), key=lambda pair: (pair[1].breached_at, pair[0], pair[1].mention_id))


ItemKey = tuple[str, int, int]


def _latest_listings(summaries: Sequence[ShiftSummary]) -> dict[ItemKey, tuple[bool, str, int, HandoverItem | None]]:
    """Each item as the latest shift that listed it left it: (open at that shift's end, agent, end, the newest
    hand-over row listing it). Both the open count and the hand-over list read this, so they always agree."""
    latest: dict[ItemKey, tuple[bool, str, int, HandoverItem | None]] = {}
    # A stable sort: of two shifts ending together, the later file wins.
    ordered = sorted(summaries, key=lambda s: s.shift.ended_at or s.generated_at)
    for s in ordered:
        end = s.shift.ended_at or s.generated_at
        rows = {(h.channel, h.mention_id, h.received_at): h for h in s.handover}
        listed: dict[ItemKey, bool] = {(r.channel, r.mention_id, r.received_at): r.open_at_end for r in s.items}
        if not s.items:  # a summary without item rows (a preview): its hand-over lists the open ones
            listed = dict.fromkeys(rows, True)
        for key, is_open in listed.items():
            earlier = latest.get(key)
            row = rows.get(key) or (earlier[3] if earlier is not None else None)
            latest[key] = (is_open, s.shift.agent, end, row)
    return latest


def open_at_end(summaries: Sequence[ShiftSummary]) -> int:
    """Items open at the end of the latest of these shifts that listed them: an item open in several shifts
    counts once, and one resolved in a later shift not at all."""
    return sum(1 for is_open, _agent, _end, _row in _latest_listings(summaries).values() if is_open)


def open_handovers(summaries: Sequence[ShiftSummary]) -> list[tuple[str, int, HandoverItem]]:
    """The hand-over rows of the items `open_at_end` counts (same rule, so the report never says two numbers),
    soonest deadline first."""
    rows = [
        (agent, end, row)
        for is_open, agent, end, row in _latest_listings(summaries).values()
        if is_open and row is not None
    ]
    return sorted(rows, key=lambda t: min((d.due_at for d in t[2].deadlines), default=2**62))


def _merge(label: str, summaries: Sequence[ShiftSummary], scorer: NetEasyScorer) -> Group:
    met = sum(k.met for s in summaries for k in s.sla)
    breached = len(unique_breaches(summaries))
    ne = [s.net_easy for s in summaries]
    return Group(
        label=label,
        shifts=len(summaries),
        received=sum(s.counts.received for s in summaries),
        handled=sum(s.counts.handled for s in summaries),
        resolved=sum(s.counts.resolved for s in summaries),
        resolved_single_reply=sum(s.counts.resolved_single_reply for s in summaries),
        community=sum(s.counts.community for s in summaries),
        still_open=open_at_end(summaries),
        first_response=first_response_figures(
            [x for s in summaries for x in s.first_response.samples_s],
            [x for s in summaries for x in s.first_response.business_samples_s],
            calendar=next((s.first_response.business_calendar for s in summaries), ""),
        ),
        sla_met=met,
        sla_breached=breached,
        sla_pct=None if met + breached == 0 else 100.0 * met / (met + breached),
        # Pooled from the answers, never averaged from scores.
        net_easy=scorer(
            sum(n.sent for n in ne), sum(n.easy for n in ne), sum(n.neutral for n in ne), sum(n.difficult for n in ne)
        ),
        handling_s=sum(c.handling_s for s in summaries for c in s.channels),
        cost=round(sum(c.cost for s in summaries for c in s.channels), 2),
    )


@dataclass(frozen=True)
class ChannelGroup:
    channel: str
    shifts: int
    items: int
    customers: int
    handled: int
    resolved: int
    resolution_rate: float | None
    handling_s: int
    cost: float
    net_easy: NetEasy


@dataclass(frozen=True)
class Merged:
    total: Group
    agents: list[Group]
    days: list[Group]
    channels: list[ChannelGroup]
    breaches: list[tuple[str, Breach]]
    handovers: list[tuple[str, int, HandoverItem]]  # (agent, shift end, item)


def merge(review: Review, *, tz: tzinfo | None = None, scorer: NetEasyScorer = score_net_easy) -> Merged:
    """Merge every loaded summary: totals, per agent, per day (local date of the shift start), per channel."""
    items = review.summaries
    agents: dict[str, list[ShiftSummary]] = {}
    days: dict[str, list[ShiftSummary]] = {}
    for s in items:
        agents.setdefault(s.shift.agent, []).append(s)
        day = local_datetime(s.shift.started_at, tz)
        days.setdefault(day.strftime("%Y-%m-%d %a") if day else "?", []).append(s)
    channels: dict[str, list[ChannelFigures]] = {}
    for s in items:
        for c in s.channels:
            channels.setdefault(c.channel, []).append(c)
    channel_groups = []
    for name in sorted(channels):
        cs = channels[name]
        handled = sum(c.handled for c in cs)
        resolved = sum(c.resolved for c in cs)
        ne = [c.net_easy for c in cs]
        channel_groups.append(
            ChannelGroup(
                channel=name,
                shifts=len(cs),
                items=sum(c.items for c in cs),
                customers=_customers(cs),
                handled=handled,
                resolved=resolved,
                resolution_rate=None if handled == 0 else 100.0 * sum(
                    (c.resolution_rate or 0.0) * c.handled / 100.0 for c in cs) / handled,
                handling_s=sum(c.handling_s for c in cs),
                cost=round(sum(c.cost for c in cs), 2),
                net_easy=scorer(sum(n.sent for n in ne), sum(n.easy for n in ne), sum(n.neutral for n in ne),
                                sum(n.difficult for n in ne)),
            )
        )  # fmt: skip
    breaches = unique_breaches(items)
    handovers = open_handovers(items)
    return Merged(
        total=_merge("All shifts", items, scorer),
        agents=[_merge(a, ss, scorer) for a, ss in sorted(agents.items())],
        days=[_merge(d, ss, scorer) for d, ss in sorted(days.items())],
        channels=channel_groups,
        breaches=breaches,
        handovers=handovers,
    )


def _customers(figures: Sequence[ChannelFigures]) -> int:
    """Unique customers across shifts by their stable key; summaries from before the keys were exported
    (version 1) add their per-shift counts."""
    keys = {k for c in figures for k in c.customer_keys}
    return len(keys) + sum(c.unique_customers for c in figures if not c.customer_keys and c.unique_customers)


# ---------------------------------------------------------------------------------------------------- report
def _group_rows(groups: Sequence[Group]) -> list[list[str]]:
    return [
        [g.label, f"{g.shifts}", f"{g.received:,}", f"{g.handled:,}", f"{g.resolved:,}", f"{g.still_open:,}",
         fmt_duration(g.first_response.median_s), fmt_duration(g.first_response.p90_s), fmt_pct(g.sla_pct),
         f"{g.sla_breached:,}", fmt_net_easy_short(g.net_easy)]
        for g in groups
    ]  # fmt: skip


_GROUP_HEADERS = ["", "Shifts", "Received", "Handled", "Resolved", "Open", "FR med.", "FR p90", "SLA met",
                  "Breaches", "Net Easy"]  # fmt: skip
_GROUP_WIDTHS = [1.4, 0.75, 1.15, 1.1, 1.15, 0.75, 0.95, 0.95, 0.85, 1.15, 1.9]


def review_report(review: Review, *, tz: tzinfo | None = None, scorer: NetEasyScorer = score_net_easy) -> Report:
    """The merged report: per-agent, per-channel and per-day tables, charts, breaches and open hand-overs."""
    m = merge(review, tz=tz, scorer=scorer)
    t = m.total
    starts = [s.shift.started_at for s in review.summaries]
    ends = [s.shift.ended_at or s.generated_at for s in review.summaries]
    currency = review.summaries[0].currency if review.summaries else ""
    subtitle = (
        f"{count(len(review.summaries), 'shift')} · {count(len(m.agents), 'agent')} · "
        f"{fmt_when(min(starts), tz)} – {fmt_when(max(ends), tz)}"
        if review.summaries
        else "No summaries loaded"
    )
    tiles = [
        Tile("Received", f"{t.received:,}"),
        Tile("Handled", f"{t.handled:,}"),
        Tile("Resolved", f"{t.resolved:,}", f"{t.resolved_single_reply:,} with one reply · {t.community:,} community"),
        Tile("Open hand-overs", f"{len(m.handovers):,}", tone="warn" if m.handovers else "good"),
        Tile("First response", fmt_duration(t.first_response.median_s),
             f"median · p90 {fmt_duration(t.first_response.p90_s)}"),
        Tile("SLA met", fmt_pct(t.sla_pct), count(t.sla_breached, "breach"), tone_pct(t.sla_pct)),
        Tile("Net Easy", "–" if t.net_easy.score is None else f"{t.net_easy.score:+.0f}",
             net_easy_tile_note(t.net_easy)),
        Tile("Handling cost", fmt_money(t.cost, currency), fmt_duration(t.handling_s)),
    ]  # fmt: skip
    align = "l" + "r" * 9 + "l"
    agents = Section(
        "Per agent",
        tables=[
            Table(_GROUP_HEADERS, _group_rows([*m.agents, t]), widths=_GROUP_WIDTHS, align=align,
                  tones=[tone_pct(g.sla_pct) if g.sla_breached else "" for g in m.agents] + [""], note=NET_EASY_NOTE)
        ],
        charts=[
            Chart("Items handled per agent", charts.bars([g.label for g in m.agents], [g.handled for g in m.agents],
                                                           ylabel="Items handled")),
            Chart("SLA met per agent", charts.bars([g.label for g in m.agents], [g.sla_pct or 0.0 for g in m.agents],
                                                     ylabel="% of deadlines met", color=charts.GREEN)),
            Chart("Net Easy per agent", charts.net_easy_by([(g.label, g.net_easy) for g in m.agents], what="agent")),
        ],
        charts_first=False,
    )  # fmt: skip
    channels = Section(
        "Per channel",
        intro=(
            "Customers are counted once across all shifts (by a stable customer key). Net Easy is pooled from the "
            "answers of every shift."
        ),
        tables=[
            Table(
                ["Channel", "Shifts", "Items", "Customers", "Handled", "Resolved", "Resolution", "Handling", "Cost",
                 "Net Easy"],
                [[c.channel, f"{c.shifts}", f"{c.items:,}", f"{c.customers:,}", f"{c.handled:,}", f"{c.resolved:,}",
                  fmt_pct(c.resolution_rate), fmt_duration(c.handling_s), fmt_money(c.cost, currency),
                  fmt_net_easy_short(c.net_easy)] for c in m.channels],
                widths=[1.2, 0.9, 0.9, 1.35, 1.1, 1.15, 1.3, 1.2, 1.4, 1.8],
                note=NET_EASY_NOTE,
                align="lrrrrrrrrl",
            )
        ],
        charts=[Chart("Net Easy per channel", charts.net_easy_by([(c.channel, c.net_easy) for c in m.channels]))],
        charts_first=False,
    )  # fmt: skip
    days = Section("Per day", tables=[Table(_GROUP_HEADERS, _group_rows(m.days), widths=_GROUP_WIDTHS, align=align)])
    first = Section(
        "First response",
        charts=[Chart("First-response times, all shifts",
                      charts.first_response_distribution(t.first_response.samples_s),
                      count(t.first_response.n, "item"))],
    )  # fmt: skip
    breach_rows = [
        [fmt_when(b.breached_at, tz), agent, f"#{b.mention_id}", b.channel, short_handle(b.customer),
         KIND_LABELS.get(b.kind, b.kind),
         b.excerpt]
        for agent, b in m.breaches[:LISTED_ROWS]
    ]  # fmt: skip
    breaches = Section(
        f"Breaches ({len(m.breaches):,})",
        tables=[Table(["At", "Agent", "Item", "Channel", "Customer", "Deadline", "Message"], breach_rows,
                      widths=[1.6, 1.1, 0.7, 1, 1.2, 1.3, 3.6], align="lllllll", tones=["bad"] * len(breach_rows),
                      note=_more(len(m.breaches), "breaches"))]
        if m.breaches else [],
        paragraphs=[] if m.breaches else ["No breaches in these shifts."],
    )  # fmt: skip
    hand_rows = []
    hand_tones = []
    for agent, end, h in m.handovers[:LISTED_ROWS]:
        hand_rows.append(
            [f"#{h.mention_id}", h.channel, short_handle(h.customer), h.status, f"{agent}\n{fmt_when(end, tz)}",
             "\n".join(f"{KIND_LABELS.get(d.kind, d.kind)}: {d.state}, due {fmt_when(d.due_at, tz)}"
                       for d in h.deadlines) or "–", h.last_message]
        )  # fmt: skip
        hand_tones.append("bad" if any(d.state == "breached" for d in h.deadlines) else "warn")
    handovers = Section(
        f"Open hand-overs ({len(m.handovers):,})",
        intro="Every item still open at the end of the latest shift that listed it.",
        tables=[Table(["Item", "Channel", "Customer", "Status", "Handed over by", "Deadlines", "Last message"],
                      hand_rows, widths=[0.7, 1, 1.2, 0.9, 1.5, 2.4, 3.3], align="lllllll", tones=hand_tones,
                      note=_more(len(m.handovers), "open items"))]
        if m.handovers else [],
    )  # fmt: skip
    notes = [
        f"{s.shift.agent}, {fmt_when(s.shift.started_at, tz)}: {s.shift.notes}"
        for s in review.summaries
        if s.shift.notes
    ]
    sources = Section(
        "Sources",
        paragraphs=[
            *(f"Loaded: {src}" for src in review.sources),
            *(f"Skipped: {d}" for d in review.duplicates),
            *(f"Not loaded: {p.message}" for p in review.problems),
            *(f"Notes — {n}" for n in notes),
        ],
    )
    return Report(
        title="Supervisor review",
        subtitle=subtitle,
        meta=[("Summaries", f"{len(review.summaries)}"), ("Agents", ", ".join(g.label for g in m.agents) or "–")],
        tiles=tiles,
        sections=[agents, channels, days, first, breaches, handovers, sources],
        footer="Care Console · supervisor review",
    )


def _more(total: int, what: str) -> str:
    if total <= LISTED_ROWS:
        return ""
    return f"Showing the first {LISTED_ROWS} of {total:,} {what}; all of them are in the XLSX export."


def review_sheets(review: Review, *, tz: tzinfo | None = None, scorer: NetEasyScorer = score_net_easy) -> list[Any]:
    m = merge(review, tz=tz, scorer=scorer)

    def group(g: Group) -> list[Any]:
        return [g.label, g.shifts, g.received, g.handled, g.resolved, g.resolved_single_reply, g.community,
                g.still_open, g.first_response.n, g.first_response.median_s, g.first_response.p90_s, g.sla_met,
                g.sla_breached, g.sla_pct, g.net_easy.score, g.net_easy.n, g.net_easy.low, g.net_easy.high,
                g.handling_s, g.cost]  # fmt: skip

    headers = ["", "Shifts", "Received", "Handled", "Resolved", "Resolved with one reply", "Community", "Open",
               "FR n", "FR median (s)", "FR p90 (s)", "SLA met", "SLA breached", "SLA met %", "Net Easy", "n",
               "95% low", "95% high", "Handling (s)", "Cost"]  # fmt: skip
    item_rows = (
        [s.shift.agent, s.shift.id, *[local_datetime(v, tz) if k in ("received_at", "first_response_at", "resolved_at")
                                      else v for k, v in vars(row).items()]]
        for s in review.summaries for row in s.items
    )  # fmt: skip
    return [
        ("Agents", headers, [group(g) for g in [*m.agents, m.total]]),
        ("Days", headers, [group(g) for g in m.days]),
        ("Channels", ["Channel", "Shifts", "Items", "Customers", "Handled", "Resolved", "Resolution %", "Handling (s)",
                      "Cost", "Net Easy", "n", "95% low", "95% high"],
         [[c.channel, c.shifts, c.items, c.customers, c.handled, c.resolved, c.resolution_rate, c.handling_s, c.cost,
           c.net_easy.score, c.net_easy.n, c.net_easy.low, c.net_easy.high] for c in m.channels]),
        ("Breaches", ["Agent", "Item", "Channel", "Customer", "Deadline", "Due", "Breached", "Met", "Message"],
         [[a, b.mention_id, b.channel, b.customer, b.kind, local_datetime(b.due_at, tz),
           local_datetime(b.breached_at, tz), local_datetime(b.met_at, tz), b.excerpt] for a, b in m.breaches]),
        ("Open hand-overs",
         ["Agent", "Shift end", "Item", "Channel", "Customer", "Status", "Deadlines", "Last message"],
         [[a, local_datetime(end, tz), h.mention_id, h.channel, h.customer, h.status,
           "; ".join(f"{d.kind} {d.state} {local_datetime(d.due_at, tz)}" for d in h.deadlines), h.last_message]
          for a, end, h in m.handovers]),
        ("Items", ["agent", "shift", *COLUMNS], item_rows),
    ]  # fmt: skip


def write_review(
    review: Review, path: Path, *, tz: tzinfo | None = None, progress: Progress | None = None,
    scorer: NetEasyScorer = score_net_easy,
) -> Path:  # fmt: skip
    """Export the merged report as PDF, HTML or XLSX (by the file's extension), atomically.

    Raises:
        ExportError: an unknown extension, or the file could not be written.
    """
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix == "xlsx":
        return write_xlsx(review_sheets(review, tz=tz, scorer=scorer), path, progress=progress)
    if suffix in ("html", "htm"):
        from console.reports.export.html import write_html

        return write_html(review_report(review, tz=tz, scorer=scorer), path)
    if suffix == "pdf":
        from console.reports.export.pdf import write_pdf

        return write_pdf(review_report(review, tz=tz, scorer=scorer), path, progress=progress)
    raise ExportError(f"Cannot write the review as {path}: use a .pdf, .html or .xlsx file name.")
