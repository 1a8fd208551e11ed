"""A report as data (tiles, tables, charts, notes) built from a shift summary; HTML and PDF render it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from console.reports.export import charts
from console.reports.export.tables import local_datetime
from console.reports.summary import NetEasy, ShiftSummary
from console.wording import count

Progress = Callable[[float, str], None]

#: Breaches and hand-over items listed in a PDF/HTML report; all of them are in the CSV, XLSX and JSON.
LISTED_ROWS = 100
KIND_LABELS = {
    "first_response": "First response",
    "next_response": "Next response",
    "follow_up": "Follow-up commitment",
    "resolution": "Resolution",
}


@dataclass(frozen=True)
class Tile:
    label: str
    value: str
    note: str = ""
    tone: str = ""  # "", "good", "warn", "bad"


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]
    title: str = ""
    #: Relative column widths (PDF) and "r" for right-aligned numeric columns.
    widths: list[float] = field(default_factory=list)
    align: str = ""
    #: Per row: "" or "bad" / "warn" (breaches, items near their deadline).
    tones: list[str] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True)
class Chart:
    title: str
    png: bytes
    caption: str = ""


@dataclass(frozen=True)
class Section:
    title: str
    intro: str = ""
    tiles: list[Tile] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    paragraphs: list[str] = field(default_factory=list)
    #: Charts come before the tables unless False (the channels table reads better first).
    charts_first: bool = True


@dataclass(frozen=True)
class Report:
    title: str
    subtitle: str
    meta: list[tuple[str, str]]
    tiles: list[Tile]
    sections: list[Section]
    footer: str = "Care Console"


# ---------------------------------------------------------------------------------------------------- formatting
def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    h, rest = divmod(s, 3600)
    return f"{h} h {rest // 60:02d} min"


def fmt_pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}%"


def fmt_when(epoch: int | None, tz: tzinfo | None, *, date: bool = True) -> str:
    when = local_datetime(epoch, tz)
    if when is None:
        return "–"
    return when.strftime("%a %d %b %Y, %H:%M" if date else "%H:%M")


def fmt_due(epoch: int, reference: int, tz: tzinfo | None) -> str:
    """``15:30`` on the reference day, else ``Fri 02 Jan 06:00``."""
    when = local_datetime(epoch, tz)
    ref = local_datetime(reference, tz)
    if when is None or ref is None:
        return "–"
    return when.strftime("%H:%M" if when.date() == ref.date() else "%a %d %b %H:%M")


def fmt_net_easy(ne: NetEasy) -> str:
    if ne.score is None:
        return "–" if ne.sent == 0 else f"no answers yet ({ne.sent} sent)"
    low = " · low sample" if ne.low_sample else ""
    return f"{ne.score:+.0f} (n={ne.n}, 95% CI {fmt_interval(ne)}{low})"


def fmt_interval(ne: NetEasy) -> str:
    """``[+8, +70]``: the 95% interval's bounds. The adjusted-Wald interval is not centred on the raw score and
    is clipped to ±100, so "score ± margin" would imply bounds it does not have (issue 20, numbers 6)."""
    if ne.low is None or ne.high is None:
        return ""
    return f"[{ne.low:+.0f}, {ne.high:+.0f}]"


def fmt_net_easy_short(ne: NetEasy) -> str:
    """``+45 [+8, +70], n=20`` for table cells (see ``NET_EASY_NOTE``)."""
    if ne.score is None or ne.low is None or ne.high is None:
        return "–" if ne.sent == 0 else f"– ({ne.sent} sent)"
    return f"{ne.score:+.0f} {fmt_interval(ne)}, n={ne.n}"


NET_EASY_NOTE = "Net Easy: score [95% interval, adjusted Wald], n answers; below n = 30 it is a low sample."


def net_easy_tile_note(ne: NetEasy) -> str:
    """``n=20 · 95% CI [+8, +70]`` under a Net Easy tile."""
    return f"n={ne.n}" + (f" · 95% CI {fmt_interval(ne)}" if ne.low is not None else "")


def _ci(ne: NetEasy) -> str:
    if ne.low is None or ne.high is None:
        return "no answers yet"
    return f"95% CI {fmt_interval(ne)}" + (" · low sample" if ne.low_sample else "")


def short_handle(customer: str) -> str:
    """``@ana@social.example`` -> ``@ana`` for report tables (the full handle is in CSV, XLSX and JSON)."""
    if customer.startswith("@") and customer.count("@") >= 2:
        return "@" + customer[1:].split("@", 1)[0]
    return customer


def fmt_money(amount: float, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def shift_span(started: int, ended: int | None, tz: tzinfo | None) -> str:
    start = local_datetime(started, tz)
    end = local_datetime(ended, tz)
    if start is None:
        return ""
    if end is None:
        return f"{start:%a %d %b %Y, %H:%M} – still running"
    same_day = start.date() == end.date()
    tail = f"{end:%H:%M}" if same_day else f"{end:%a %d %b, %H:%M}"
    return f"{start:%a %d %b %Y, %H:%M} – {tail} ({fmt_duration(end.timestamp() - start.timestamp())})"


def tone_pct(value: float | None, *, good: float = 90.0, warn: float = 75.0) -> str:
    if value is None:
        return ""
    return "good" if value >= good else "warn" if value >= warn else "bad"


def _overflow(total: int, what: str) -> str:
    if total <= LISTED_ROWS:
        return ""
    return f"Showing the first {LISTED_ROWS} of {total:,} {what}; every one is in the CSV, XLSX and JSON exports."


# ---------------------------------------------------------------------------------------------------- shift report
def shift_report(
    summary: ShiftSummary, *, tz: tzinfo | None = None, progress: Progress | None = None, now: datetime | None = None
) -> Report:
    """The designed shift report: figures, charts, SLA, channels, themes, breaches and the hand-over."""
    s = summary
    c = s.counts

    def step(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)

    fr = s.first_response
    end = s.shift.ended_at if s.shift.ended_at is not None else s.generated_at
    sla_total_met = sum(k.met for k in s.sla)
    sla_breached = sum(k.breached for k in s.sla)
    sla_inherited = sum(k.inherited for k in s.sla)
    sla_total = sla_total_met + sla_breached
    sla_pct = None if sla_total == 0 else 100.0 * sla_total_met / sla_total
    breach_note = count(sla_breached, "breach") + (f" ({sla_inherited:,} inherited)" if sla_inherited else "")
    tiles = [
        Tile("Received", f"{c.received:,}"),
        Tile("Handled", f"{c.handled:,}", f"{count(c.replies_sent, 'reply')} sent"),
        Tile("Resolved", f"{c.resolved:,}", f"{c.resolved_single_reply:,} with one reply · {c.community:,} community"),
        Tile("Still open", f"{c.still_open:,}", "handed over", "warn" if c.still_open else "good"),
        Tile("First response", fmt_duration(fr.median_s), f"median · p90 {fmt_duration(fr.p90_s)}"),
        Tile("SLA met", fmt_pct(sla_pct), breach_note, tone_pct(sla_pct)),
        Tile(
            "Net Easy",
            "–" if s.net_easy.score is None else f"{s.net_easy.score:+.0f}",
            net_easy_tile_note(s.net_easy),
        ),
    ]  # fmt: skip
    step(0.1, "Drawing charts")
    service = Section(
        "Volume and service levels",
        charts=[
            Chart("Volume per hour", charts.volume_per_hour(s.hours, tz), "Items received and replies sent"),
            Chart("SLA over the shift", charts.sla_over_shift(s.hours, tz), "Deadlines met and breached per hour"),
        ],
        tables=[
            Table(
                ["Deadline", "Met", "Breached", "Inherited", "Met %"],
                [[KIND_LABELS.get(k.kind, k.kind), f"{k.met:,}", f"{k.breached:,}", f"{k.inherited:,}",
                  fmt_pct(k.met_pct)] for k in s.sla],
                title="SLA per deadline kind",
                widths=[3, 1, 1, 1, 1],
                align="lrrrr",
                tones=[tone_pct(k.met_pct) if k.breached else "" for k in s.sla],
                note="Inherited: breached before the shift started and dealt with in it (counted among the breaches)."
                if sla_inherited else "",
            )
        ],
    )  # fmt: skip
    step(0.3, "Drawing charts")
    first = Section(
        "First response",
        charts=[Chart("First-response times", charts.first_response_distribution(fr.samples_s), count(fr.n, "item"))],
        tables=[
            Table(
                ["Time", "Items", "Median", "Mean", "p90"],
                [
                    [
                        "Calendar time",
                        f"{fr.n:,}",
                        fmt_duration(fr.median_s),
                        fmt_duration(fr.mean_s),
                        fmt_duration(fr.p90_s),
                    ],
                    [
                        f"Business time ({fr.business_calendar or 'calendar'})",
                        f"{len(fr.business_samples_s):,}",
                        fmt_duration(fr.business_median_s),
                        fmt_duration(fr.business_mean_s),
                        fmt_duration(fr.business_p90_s),
                    ],
                ],
                widths=[2.2, 1, 1, 1, 1],
                align="lrrrr",
                note="Business time counts only the opening hours of the business calendar.",
            )
        ],
    )
    step(0.5, "Drawing charts")
    channel_rows = [
        [
            ch.channel, f"{ch.items:,}", f"{ch.unique_customers:,}", f"{ch.handled:,}", f"{ch.resolved:,}",
            fmt_pct(ch.resolution_rate), fmt_duration(ch.handling_s), fmt_money(ch.cost, s.currency),
            fmt_net_easy_short(ch.net_easy),
        ]
        for ch in s.channels
    ]  # fmt: skip
    channels = Section(
        "Channels",
        intro=(
            f"Handling time is the agent's active time on each item from the event log (gaps over "
            f"{10} min count as breaks); cost at {fmt_money(s.hourly_rate, s.currency)} per hour."
        ),
        tables=[
            Table(
                ["Channel", "Items", "Customers", "Handled", "Resolved", "Resolution", "Handling", "Cost", "Net Easy"],
                channel_rows,
                widths=[1.3, 0.8, 1.35, 1.15, 1.15, 1.35, 1.2, 1.4, 1.8],
                align="lrrrrrrrl",
                note=NET_EASY_NOTE,
            )
        ],
        charts=[Chart("Net Easy per channel", charts.net_easy_by([(ch.channel, ch.net_easy) for ch in s.channels]))],
        charts_first=False,
    )
    ne = s.net_easy
    rate = None if ne.response_rate is None else 100 * ne.response_rate
    effort = Section(
        "Customer effort (Net Easy)",
        tiles=[
            Tile("Surveys sent", f"{ne.sent:,}"),
            Tile("Answers", f"{ne.n:,}", f"response rate {fmt_pct(rate)}"),
            Tile("Easy (1–2)", f"{ne.easy:,}", tone="good"),
            Tile("Neutral (3–4)", f"{ne.neutral:,}"),
            Tile("Difficult (5–7)", f"{ne.difficult:,}", tone="bad" if ne.difficult else ""),
            Tile("Net Easy", "–" if ne.score is None else f"{ne.score:+.0f}", _ci(ne)),
        ],
        intro=(
            "Net Easy = 100 × (answers 1–2 − answers 5–7) / answers, on −100…+100; the interval is the 95% "
            "adjusted-Wald interval. Below 30 answers the figure is a low sample."
        ),
    )  # fmt: skip
    themes = Section(
        "Themes for marketing and product",
        tables=[
            Table(
                ["Theme", "Items", "What customers said"],
                [
                    [("#" if t.kind == "tag" else "") + t.label, f"{t.count:,}", "\n".join(f"“{q}”" for q in t.quotes)]
                    for t in s.themes
                ],
                widths=[1.3, 0.6, 6],
                align="lrl",
            )
        ]
        if s.themes
        else [],
        paragraphs=[] if s.themes else ["No tags or recurring terms in this shift."],
    )
    step(0.7, "Laying out tables")
    breach_rows = [
        [
            fmt_due(b.breached_at, end, tz), f"#{b.mention_id}", b.channel, short_handle(b.customer),
            KIND_LABELS.get(b.kind, b.kind) + ("\n(inherited)" if b.inherited else ""),
            "not met" if b.met_at is None else f"met {fmt_duration(b.met_at - b.due_at)} late", b.excerpt,
        ]
        for b in s.breaches[:LISTED_ROWS]
    ]  # fmt: skip
    breaches = Section(
        f"Breaches ({len(s.breaches):,})",
        tables=[
            Table(
                ["At", "Item", "Channel", "Customer", "Deadline", "Outcome", "Message"],
                breach_rows,
                widths=[0.7, 0.7, 1, 1.3, 1.4, 1.4, 4],
                align="llllll" + "l",
                tones=["bad"] * len(breach_rows),
                note=" ".join(
                    x
                    for x in (
                        _overflow(len(s.breaches), "breaches"),
                        "Inherited: breached before the shift started." if sla_inherited else "",
                    )
                    if x
                ),
            )
        ]
        if s.breaches
        else [],
        paragraphs=[] if s.breaches else ["No deadline was breached in this shift."],
    )
    hand_rows: list[list[str]] = []
    hand_tones: list[str] = []
    for h in s.handover[:LISTED_ROWS]:
        deadlines = "\n".join(
            f"{KIND_LABELS.get(d.kind, d.kind)}: {d.state}, due {fmt_due(d.due_at, end, tz)}" for d in h.deadlines
        )
        hand_rows.append(
            [
                f"#{h.mention_id}", h.channel, short_handle(h.customer), h.status, deadlines or "–",
                f"{'Customer' if h.last_message_from == 'customer' else 'Us'}, {fmt_when(h.last_message_at, tz)}:\n"
                f"{h.last_message}",
            ]
        )  # fmt: skip
        soon = any(d.state == "breached" for d in h.deadlines)
        near = any(d.state == "running" and d.due_at - end < 2 * 3600 for d in h.deadlines)
        hand_tones.append("bad" if soon else "warn" if near else "")
    handover = Section(
        f"Hand-over ({len(s.handover):,} open)",
        intro=f"Notes for the next shift: {s.shift.notes}" if s.shift.notes else "No notes for the next shift.",
        tables=[
            Table(
                ["Item", "Channel", "Customer", "Status", "Deadlines", "Last message"],
                hand_rows,
                widths=[0.7, 1, 1.3, 0.9, 2.4, 4.3],
                align="llllll",
                tones=hand_tones,
                note=_overflow(len(s.handover), "open items")
                + (" Red: breached. Amber: due within 2 hours of the shift end." if hand_rows else ""),
            )
        ]
        if s.handover
        else [],
    )
    audit_rows = [
        [fmt_when(a.at, tz), a.actor, f"#{a.mention_id}" if a.mention_id else "–", a.text]
        for a in s.audit[:LISTED_ROWS]
    ]
    audit = Section(
        f"Audit ({len(s.audit):,})",
        intro="Claims, releases, reassignments, hand-overs and replies sent anyway, each with its author and time.",
        tables=[
            Table(
                ["At", "By", "Item", "Action"],
                audit_rows,
                widths=[1.2, 1, 0.7, 5],
                align="llll",
                note=_overflow(len(s.audit), "audited actions"),
            )
        ],
    )
    meta = [
        ("Agent", s.shift.agent),
        ("Shift", f"#{s.shift.id}"),
        ("Generated", fmt_when(s.generated_at, tz)),
    ]
    if s.redacted:
        meta.append(("Customers", "redacted"))
    step(0.8, "Report laid out")
    return Report(
        title=f"Shift report · {s.shift.agent}",
        subtitle=shift_span(s.shift.started_at, s.shift.ended_at, tz),
        meta=meta,
        tiles=tiles,
        sections=[service, first, channels, effort, themes, breaches, handover, *([audit] if s.audit else [])],
        footer=f"Care Console · shift summary v{s.version}",
    )


def group_tiles(tiles: Sequence[Tile], size: int) -> list[list[Tile]]:
    return [list(tiles[i : i + size]) for i in range(0, len(tiles), size)]
