"""CSV and XLSX exports: one row per item with all its times, states, SLA results and survey score; no row cap."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, BinaryIO

from console.reports.export.atomic import write_atomic
from console.reports.summary import ItemRow

Progress = Callable[[float, str], None]

#: Item fields holding epoch seconds; exports show them as local date-times (DESIGN "Data").
TIME_FIELDS = frozenset({"received_at", "first_response_at", "resolved_at"})
COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ItemRow))
_PROGRESS_EVERY = 2000


def local_datetime(epoch: int | None, tz: tzinfo | None) -> datetime | None:
    """A naive local date-time (spreadsheets have no time zones); None stays None."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz).replace(tzinfo=None) if tz else datetime.fromtimestamp(epoch)


def _cells(row: ItemRow, tz: tzinfo | None) -> list[Any]:
    out: list[Any] = []
    for name in COLUMNS:
        value = getattr(row, name)
        if name in TIME_FIELDS:
            value = local_datetime(value, tz)
        out.append(value)
    return out


#: Characters no export passes on from customer text: NUL and the other C0/C1 controls (tab, line feed and
#: carriage return stay), and the bidirectional controls (LRM, RLM, ALM, the embeddings, overrides and
#: isolates) with which a customer's text could reorder what the reader sees around it ("Trojan Source").
_UNSAFE = dict.fromkeys(
    [
        *(c for c in range(0x20) if chr(c) not in "\t\n\r"),
        *range(0x7F, 0xA0),
        0x061C,
        0x200E,
        0x200F,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    ]
)


def clean_text(text: str) -> str:
    """Customer text as exports write it: NUL, other control characters and bidirectional controls removed.

    Args:
        text: Any text from the database (customer messages, handles, tags).

    Returns:
        The text without those characters (everything else, including emoji joiners, is kept).
    """
    return text.translate(_UNSAFE)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, str):
        text = clean_text(value)
        if text.lstrip().startswith(_FORMULA_STARTS) or text.startswith(("\t", "\r")):
            # CSV injection (OWASP): a spreadsheet would run "=HYPERLINK(...)" or "@SUM(...)" from a customer's
            # message, and spreadsheet apps skip leading spaces and line breaks before the "="; a leading
            # apostrophe makes it text, as the XLSX export does with strings_to_formulas.
            return "'" + text
        return text
    return str(value)


_FORMULA_STARTS = ("=", "+", "-", "@")


def write_csv(
    rows: Sequence[ItemRow], path: Path, *, tz: tzinfo | None = None, progress: Progress | None = None
) -> Path:
    """Write the items as CSV (UTF-8 with a BOM so that spreadsheet apps read accents), atomically."""

    def write(stream: BinaryIO) -> None:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        writer = csv.writer(text)
        writer.writerow(COLUMNS)
        for i, row in enumerate(rows):
            writer.writerow([_csv_cell(v) for v in _cells(row, tz)])
            if progress is not None and i % _PROGRESS_EVERY == 0:
                progress(i / max(1, len(rows)), f"Writing row {i + 1:,} of {len(rows):,}")
        text.flush()
        text.detach()

    return write_atomic(path, write)


def write_xlsx(
    sheets: Iterable[tuple[str, Sequence[str], Iterable[Sequence[Any]]]],
    path: Path,
    *,
    progress: Progress | None = None,
) -> Path:
    """Write one worksheet per (title, headers, rows) with XlsxWriter's streaming mode, atomically.

    Text is never turned into formulas, links or numbers (customer messages can start with ``=`` or ``@``).
    """
    import xlsxwriter

    def write(stream: BinaryIO) -> None:
        workbook = xlsxwriter.Workbook(
            stream,
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
                "default_date_format": "yyyy-mm-dd hh:mm:ss",
                "remove_timezone": True,
            },
        )
        bold = workbook.add_format({"bold": True, "bg_color": "#F1F5F9", "bottom": 1})
        count = 0
        for title, headers, rows in sheets:
            sheet = workbook.add_worksheet(title[:31])
            sheet.freeze_panes(1, 0)
            sheet.write_row(0, 0, list(headers), bold)
            sheet.set_column(0, max(0, len(headers) - 1), 16)
            for r, row in enumerate(rows, start=1):
                sheet.write_row(r, 0, [_xlsx_cell(v) for v in row])
                count += 1
                if progress is not None and count % _PROGRESS_EVERY == 0:
                    progress(0.5, f"Writing row {count:,}")
        workbook.close()

    return write_atomic(path, write)


def _xlsx_cell(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    value = clean_text(value)
    if len(value) > 32_000:  # Excel's cell limit is 32,767 characters
        return value[:32_000] + "…"
    return value


def item_sheet(rows: Sequence[ItemRow], tz: tzinfo | None) -> tuple[str, Sequence[str], Iterable[Sequence[Any]]]:
    return ("Items", COLUMNS, (_cells(r, tz) for r in rows))
