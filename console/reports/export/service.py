"""Export a shift summary in any format; big exports run in a worker thread with their own connection.

The summary, report and table code is imported when a summary is first built: the app creates its
ExportService at start-up, before its first paint, and exports only later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import tzinfo
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.ports import Clock
from console.reports.export.atomic import ExportError
from storage.settings import SLA_POLICIES, SettingsRepo
from storage.shifts import CURRENCY, HOURLY_RATE, ShiftRepo, open_shift_repo

if TYPE_CHECKING:
    from console.reports.export.report import Report
    from console.reports.summary import NetEasyScorer, ShiftSummary
    from console.sla.policy import PolicySet

Progress = Callable[[float, str], None]


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"
    HTML = "html"
    PDF = "pdf"


def format_for(path: Path, explicit: str | None = None) -> Format:
    """The format named explicitly, or by the file's extension.

    Raises:
        ExportError: neither names a known format.
    """
    name = (explicit or Path(path).suffix.lstrip(".")).lower()
    if name == "htm":
        name = "html"
    try:
        return Format(name)
    except ValueError:
        known = ", ".join(f.value for f in Format)
        raise ExportError(f"Unknown export format {name!r} for {path}: use one of {known}.") from None


def summary_sheets(
    summary: ShiftSummary, tz: tzinfo | None
) -> list[tuple[str, Sequence[str], Iterable[Sequence[Any]]]]:
    """XLSX worksheets: the items (one row each, no cap), the breaches, the hand-over and the channels."""
    from console.reports.export.report import KIND_LABELS  # here and below: see the module's docstring
    from console.reports.export.tables import item_sheet, local_datetime

    s = summary
    figures: list[Sequence[Any]] = [
        ("Agent", s.shift.agent),
        ("Shift", s.shift.id),
        ("Started", local_datetime(s.shift.started_at, tz)),
        ("Ended", local_datetime(s.shift.ended_at, tz)),
        *((name.replace("_", " ").capitalize(), value) for name, value in vars(s.counts).items()),
        ("First response median (s)", s.first_response.median_s),
        ("First response p90 (s)", s.first_response.p90_s),
        ("First response median, business time (s)", s.first_response.business_median_s),
        ("First response p90, business time (s)", s.first_response.business_p90_s),
        *(
            (f"SLA {KIND_LABELS[k.kind]} met / breached (inherited)", f"{k.met} / {k.breached} ({k.inherited})")
            for k in s.sla
        ),
        ("Net Easy", s.net_easy.score),
        ("Net Easy n", s.net_easy.n),
        ("Net Easy 95% low", s.net_easy.low),
        ("Net Easy 95% high", s.net_easy.high),
        ("Notes for the next shift", s.shift.notes),
    ]
    breaches = [
        (b.mention_id, b.channel, b.customer, KIND_LABELS.get(b.kind, b.kind), local_datetime(b.due_at, tz),
         local_datetime(b.met_at, tz), b.inherited, b.url, b.excerpt)
        for b in s.breaches
    ]  # fmt: skip
    handover = [
        (h.mention_id, h.channel, h.customer, h.status, h.priority, h.tags, local_datetime(h.received_at, tz),
         "; ".join(f"{KIND_LABELS.get(d.kind, d.kind)} {d.state} due {local_datetime(d.due_at, tz)}"
                   for d in h.deadlines),
         h.last_message_from, local_datetime(h.last_message_at, tz), h.last_message, h.url)
        for h in s.handover
    ]  # fmt: skip
    channels = [
        (c.channel, c.items, c.unique_customers, c.received, c.handled, c.resolved, c.resolution_rate, c.handling_s,
         c.cost, c.net_easy.score, c.net_easy.n, c.net_easy.low, c.net_easy.high)
        for c in s.channels
    ]  # fmt: skip
    audit = [(local_datetime(a.at, tz), a.actor, a.mention_id or "", a.text, a.channel) for a in s.audit]
    sheets: list[tuple[str, Sequence[str], Iterable[Sequence[Any]]]] = [
        ("Summary", ("Figure", "Value"), figures),
        item_sheet(s.items, tz),
        ("Breaches", ("Item", "Channel", "Customer", "Deadline", "Due", "Met", "Inherited", "URL", "Message"),
         breaches),
        ("Hand-over", ("Item", "Channel", "Customer", "Status", "Priority", "Tags", "Received", "Deadlines",
                       "Last message from", "Last message at", "Last message", "URL"), handover),
        ("Channels", ("Channel", "Items", "Customers", "Received", "Handled", "Resolved", "Resolution %",
                      "Handling (s)", f"Cost ({s.currency})", "Net Easy", "n", "95% low", "95% high"), channels),
    ]  # fmt: skip
    if s.audit:  # team reports: who claimed, released, reassigned, handed over or sent anyway, and when
        sheets.append(("Audit", ("At", "By", "Item", "Action", "Channel"), audit))
    return sheets


def write_summary(
    summary: ShiftSummary, fmt: Format, path: Path, *, tz: tzinfo | None = None, progress: Progress | None = None
) -> Path:
    """Write ``summary`` to ``path`` in ``fmt``, atomically (a failed export leaves no file behind).

    Raises:
        ExportError: the file could not be written; the message names it.
    """
    from console.reports.export.codec import write_json
    from console.reports.export.report import shift_report
    from console.reports.export.tables import write_csv, write_xlsx

    if fmt is Format.JSON:
        return write_json(summary, path)
    if fmt is Format.CSV:
        return write_csv(summary.items, path, tz=tz, progress=progress)
    if fmt is Format.XLSX:
        return write_xlsx(summary_sheets(summary, tz), path, progress=progress)
    report = shift_report(summary, tz=tz, progress=progress)
    if fmt is Format.HTML:
        from console.reports.export.html import write_html  # jinja2: loaded when a report is written, not at start-up

        return write_html(report, path)
    from console.reports.export.pdf import write_pdf  # fpdf2 and matplotlib: likewise

    return write_pdf(report, path, progress=progress)


class ExportService:
    """Builds summaries and exports them off the GUI loop (one worker thread, its own database connection)."""

    def __init__(
        self,
        db_path: Path,
        clock: Clock,
        settings: SettingsRepo,
        *,
        scorer: NetEasyScorer | None = None,
        open_repo: Callable[[Path], ShiftRepo] = open_shift_repo,
    ) -> None:
        """``scorer``: how Net Easy is scored (default: console.reports.summary.score_net_easy)."""
        self._db_path = db_path
        self._clock = clock
        self._settings = settings
        self._scorer = scorer
        self._open_repo = open_repo
        self._executor: ThreadPoolExecutor | None = None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def build(
        self,
        shift_id: int | None,
        *,
        redact: bool = False,
        rate: tuple[float, str] | None = None,
        policies: PolicySet | None = None,
    ) -> ShiftSummary:
        """Build the summary of a shift (``None``: the most recent one) on the calling thread.

        Raises:
            ExportError: there is no such shift.
        """
        from console.reports.summary import SummaryBuilder, business_calendar, score_net_easy

        hourly, currency = rate if rate is not None else self.rate()
        scorer = self._scorer or score_net_easy
        business = business_calendar(policies if policies is not None else self.policies())
        repo = self._open_repo(self._db_path)
        try:
            shift = repo.last() if shift_id is None else repo.get(shift_id)
            if shift is None:
                raise ExportError("There is no shift yet." if shift_id is None else f"There is no shift {shift_id}.")
            builder = SummaryBuilder(
                repo, self._clock, hourly_rate=hourly, currency=currency, scorer=scorer, business=business
            )
            return builder.build(shift, redact=redact)
        finally:
            repo.close()

    def policies(self) -> PolicySet:
        """The SLA policy in force (its business calendar measures first responses in business time)."""
        from console.sla.policy import PolicyError, PolicySet, shipped_policy

        text = self._settings.get(SLA_POLICIES)
        if text:
            try:
                return PolicySet.from_json(text)
            except PolicyError:
                pass  # the SLA engine logs an unusable saved policy and uses the shipped one; so does the report
        return shipped_policy()

    def rate(self) -> tuple[float, str]:
        return self._settings.get(HOURLY_RATE), self._settings.get(CURRENCY)

    def export(
        self,
        shift_id: int | None,
        fmt: Format,
        path: Path,
        *,
        redact: bool = False,
        tz: tzinfo | None = None,
        progress: Progress | None = None,
        rate: tuple[float, str] | None = None,
        policies: PolicySet | None = None,
    ) -> Path:
        """Build and write a summary on the calling thread (the CLI; a worker thread in the app)."""
        if progress is not None:
            progress(0.0, "Reading the shift from the database")
        summary = self.build(shift_id, redact=redact, rate=rate, policies=policies)
        if progress is not None:
            progress(0.1, f"Writing {fmt.value.upper()}")
        out = write_summary(summary, fmt, path, tz=tz, progress=progress)
        if progress is not None:
            progress(1.0, f"Saved {out}")
        return out

    async def export_async(
        self,
        shift_id: int | None,
        fmt: Format,
        path: Path,
        *,
        redact: bool = False,
        progress: Progress | None = None,
    ) -> Path:
        """``export`` in the worker thread; ``progress`` is called on the event loop's thread."""
        loop = asyncio.get_running_loop()
        relay: Progress | None = None
        if progress is not None:
            report = progress

            def relay(fraction: float, message: str) -> None:
                loop.call_soon_threadsafe(report, fraction, message)

        job = partial(
            self.export, shift_id, fmt, path, redact=redact, progress=relay, rate=self.rate(), policies=self.policies()
        )
        return await loop.run_in_executor(self._worker(), job)

    async def build_async(self, shift_id: int | None, *, redact: bool = False) -> ShiftSummary:
        """``build`` in the worker thread (previews)."""
        loop = asyncio.get_running_loop()
        job = partial(self.build, shift_id, redact=redact, rate=self.rate(), policies=self.policies())
        return await loop.run_in_executor(self._worker(), job)

    async def preview_async(self, shift_id: int | None) -> tuple[ShiftSummary, Report]:
        """The summary and its report (charts drawn) for the end-of-shift preview, built in the worker thread."""
        loop = asyncio.get_running_loop()
        rate = self.rate()
        policies = self.policies()

        def job() -> tuple[ShiftSummary, Report]:
            from console.reports.export.report import shift_report

            summary = self.build(shift_id, rate=rate, policies=policies)
            return summary, shift_report(summary)

        return await loop.run_in_executor(self._worker(), job)

    def _worker(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export")
        return self._executor
