"""PDF reports with fpdf2 (pure Python): A4, DejaVu Sans (shipped with matplotlib), charts, tables, page numbers.

Customer text in Chinese, Japanese, Korean or with emoji is drawn with fpdf2's fallback fonts: the bundled Noto
Sans CJK subset and Noto Color Emoji (resources/fonts, OFL 1.1), loaded only for a report that needs them.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib import resources
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.fonts import FontFace

from console.reports.export.atomic import write_atomic
from console.reports.export.report import Report, Table, Tile, group_tiles

Progress = Callable[[float, str], None]
RGB = tuple[int, int, int]

INK: RGB = (15, 23, 42)
MUTED: RGB = (100, 116, 139)
LINE: RGB = (226, 232, 240)
SOFT: RGB = (248, 250, 252)
BLUE: RGB = (37, 99, 235)
TONES: dict[str, tuple[RGB, RGB]] = {  # tone -> (background, text)
    "good": ((240, 253, 244), (21, 128, 61)),
    "warn": ((255, 251, 235), (180, 83, 9)),
    "bad": ((254, 242, 242), (185, 28, 28)),
    "": (SOFT, INK),
}
FONT = "dejavu"
#: Fallback fonts in resources/fonts (see LICENSES.md there): (family, file), tried in this order.
FALLBACKS = (("noto-cjk", "NotoSansCJKsc-Subset.otf"), ("noto-emoji", "NotoColorEmoji.ttf"))
MARGIN = 15.0


def _bundled_font(name: str) -> str:
    # One name a step: in the bundle, files() is a MultiplexedPath whose joinpath takes a single name.
    return str(resources.files("resources") / "fonts" / name)


class _Document(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self._footer_text = footer_text
        fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
        self.add_font(FONT, "", str(fonts / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(fonts / "DejaVuSans-Bold.ttf"))
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, margin=16)
        self.set_creator("Care Console")
        self._glyphs: set[int] = set(getattr(self.fonts[FONT], "cmap", {}))

    def close_fonts(self) -> None:
        """Close the font files fpdf2 keeps open (it closes only the ones it embedded, not colour fonts)."""
        for font in self.fonts.values():
            close = getattr(font, "close", None)
            if close is not None:
                close()

    def lacks_glyphs(self, texts: Iterable[str]) -> bool:
        """Whether any of ``texts`` has a character the loaded fonts cannot draw."""
        return any(ord(ch) not in self._glyphs and ch != "\n" for text in texts for ch in text)

    def add_fallbacks(self) -> None:
        """Load the CJK and emoji fonts as fallbacks (only for a report whose text DejaVu Sans cannot draw)."""
        for family, file in FALLBACKS:
            self.add_font(family, "", _bundled_font(file))
            self._glyphs |= set(getattr(self.fonts[family], "cmap", {}))
        # Bold text falls back to the regular CJK and emoji faces (no bold of them is bundled).
        self.set_fallback_fonts([family for family, _file in FALLBACKS], exact_match=False)

    def clean(self, text: str) -> str:
        """Drop characters no loaded font can draw instead of printing empty boxes (CJK and emoji stay)."""
        return "".join(ch if ord(ch) in self._glyphs or ch == "\n" else "" for ch in text)

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font(FONT, "", 7.5)
        self.set_text_color(*MUTED)
        self.cell(0, 5, self.clean(self._footer_text), align="L")
        self.set_x(MARGIN)
        self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="R")


def _texts(report: Report) -> Iterator[str]:
    """Every string the report prints."""
    yield from (report.title, report.subtitle, report.footer)
    for key, value in report.meta:
        yield from (key, value)
    tiles = list(report.tiles)
    for section in report.sections:
        yield from (section.title, section.intro, *section.paragraphs)
        tiles += section.tiles
        for chart in section.charts:
            yield from (chart.title, chart.caption)
        for table in section.tables:
            yield from (table.title, table.note, *table.headers)
            for row in table.rows:
                yield from row
    for tile in tiles:
        yield from (tile.label, tile.value, tile.note)


def render_pdf(report: Report, *, progress: Progress | None = None) -> bytes:
    """The report as PDF bytes."""
    pdf = _Document(report.footer)
    if pdf.lacks_glyphs(_texts(report)):
        pdf.add_fallbacks()
    pdf.set_title(pdf.clean(report.title))
    pdf.alias_nb_pages()
    pdf.add_page()
    width = pdf.w - 2 * MARGIN

    # Header band
    pdf.set_fill_color(*INK)
    pdf.rect(0, 0, pdf.w, 42 + 5 * ((len(report.meta) + 3) // 4 - 1), style="F")
    pdf.set_xy(MARGIN, 11)
    pdf.set_text_color(255, 255, 255)
    pdf.set_font(FONT, "B", 19)
    pdf.cell(width, 9, pdf.clean(report.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 10.5)
    pdf.set_text_color(203, 213, 225)
    pdf.cell(width, 7, pdf.clean(report.subtitle), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font(FONT, "", 8.5)
    for i, (key, value) in enumerate(report.meta):
        if i and i % 4 == 0:
            pdf.ln(5)
            pdf.set_x(MARGIN)
        pdf.set_text_color(148, 163, 184)
        pdf.cell(pdf.get_string_width(key) + 1.5, 5, pdf.clean(key))
        pdf.set_text_color(255, 255, 255)
        pdf.cell(pdf.get_string_width(value) + 8, 5, pdf.clean(value))
    pdf.set_y(42 + 5 * ((len(report.meta) + 3) // 4 - 1) + 6)

    _tiles(pdf, report.tiles, per_row=4)
    total = max(1, len(report.sections))
    for n, section in enumerate(report.sections):
        if progress is not None:
            progress(0.8 + 0.18 * n / total, f"Writing the PDF: {section.title}")
        _heading(pdf, section.title)
        if section.intro:
            _paragraph(pdf, section.intro)
        if section.tiles:
            _tiles(pdf, section.tiles, per_row=3)
        if section.charts_first:
            for chart in section.charts:
                _chart(pdf, chart.title, chart.caption, chart.png)
        for table in section.tables:
            _table(pdf, table)
        if not section.charts_first:
            for chart in section.charts:
                _chart(pdf, chart.title, chart.caption, chart.png)
        for para in section.paragraphs:
            _paragraph(pdf, para)
    try:
        return bytes(pdf.output())
    finally:
        pdf.close_fonts()


def write_pdf(report: Report, path: Path, *, progress: Progress | None = None) -> Path:
    data = render_pdf(report, progress=progress)
    return write_atomic(path, lambda stream: stream.write(data))


# ---------------------------------------------------------------------------------------------------- parts
def _space_for(pdf: _Document, height: float) -> None:
    if pdf.get_y() + height > pdf.h - 18:
        pdf.add_page()


def _heading(pdf: _Document, title: str) -> None:
    _space_for(pdf, 60)  # a heading never ends a page: room for its first lines too
    pdf.ln(4)
    pdf.set_font(FONT, "B", 13)
    pdf.set_text_color(*INK)
    pdf.cell(0, 8, pdf.clean(title), new_x="LMARGIN", new_y="NEXT")
    y = pdf.get_y()
    pdf.set_draw_color(*BLUE)
    pdf.set_line_width(0.6)
    pdf.line(MARGIN, y, pdf.w - MARGIN, y)
    pdf.set_line_width(0.2)
    pdf.ln(3)


def _paragraph(pdf: _Document, text: str) -> None:
    pdf.set_font(FONT, "", 9)
    pdf.set_text_color(51, 65, 85)
    pdf.multi_cell(0, 4.6, pdf.clean(text), new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.ln(2)


def _tiles(pdf: _Document, tiles: Sequence[Tile], *, per_row: int) -> None:
    gap = 3.0
    width = pdf.w - 2 * MARGIN
    for row in group_tiles(tiles, per_row):
        tile_w = (width - gap * (per_row - 1)) / per_row
        height = 20.0
        _space_for(pdf, height + 3)
        y = pdf.get_y()
        for i, tile in enumerate(row):
            x = MARGIN + i * (tile_w + gap)
            background, colour = TONES.get(tile.tone, TONES[""])
            pdf.set_fill_color(*background)
            pdf.set_draw_color(*LINE)
            pdf.rect(x, y, tile_w, height, style="DF", round_corners=True, corner_radius=1.5)
            pdf.set_xy(x + 3, y + 2.2)
            pdf.set_font(FONT, "", 6.8)
            pdf.set_text_color(*MUTED)
            pdf.cell(tile_w - 6, 3.5, pdf.clean(tile.label.upper()))
            pdf.set_xy(x + 3, y + 6.2)
            value = pdf.clean(tile.value)
            size = 15.0
            pdf.set_font(FONT, "B", size)
            while size > 8 and pdf.get_string_width(value) > tile_w - 6:
                size -= 1
                pdf.set_font(FONT, "B", size)
            pdf.set_text_color(*colour)
            pdf.cell(tile_w - 6, 7, value)
            if tile.note:
                pdf.set_xy(x + 3, y + 14)
                pdf.set_font(FONT, "", 6.8)
                pdf.set_text_color(*MUTED)
                note = pdf.clean(tile.note)
                while len(note) > 4 and pdf.get_string_width(note) > tile_w - 6:
                    note = note[:-2].rstrip() + "…"
                pdf.cell(tile_w - 6, 3.5, note)
        pdf.set_y(y + height + gap)
    pdf.ln(1)


def _chart(pdf: _Document, title: str, caption: str, png: bytes) -> None:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        w_px, h_px = image.size
    width = pdf.w - 2 * MARGIN
    height = width * h_px / w_px
    _space_for(pdf, height + 9)
    pdf.set_font(FONT, "B", 9.5)
    pdf.set_text_color(*INK)
    label = pdf.clean(title)
    pdf.cell(pdf.get_string_width(label) + 2, 6, label)
    if caption:
        pdf.set_font(FONT, "", 8.5)
        pdf.set_text_color(*MUTED)
        pdf.cell(0, 6, pdf.clean(f"· {caption}"))
    pdf.ln(6)
    pdf.image(io.BytesIO(png), x=MARGIN, w=width, h=height)
    pdf.ln(3)


def _table(pdf: _Document, table: Table) -> None:
    _space_for(pdf, (7 if table.title else 0) + 8 + 8 * min(3, len(table.rows)))
    if table.title:
        pdf.set_font(FONT, "B", 9.5)
        pdf.set_text_color(*MUTED)
        pdf.cell(0, 7, pdf.clean(table.title), new_x="LMARGIN", new_y="NEXT")
    columns = len(table.headers)
    widths = tuple(table.widths) if len(table.widths) == columns else tuple([1.0] * columns)
    align = tuple("RIGHT" if (table.align[i:i + 1] == "r") else "LEFT" for i in range(columns))  # fmt: skip
    pdf.set_font(FONT, "", 7.8)
    pdf.set_text_color(*INK)
    pdf.set_draw_color(*LINE)
    headings = FontFace(family=FONT, emphasis="BOLD", color=MUTED, fill_color=SOFT, size_pt=7.0)
    with pdf.table(
        col_widths=widths,
        text_align=align,
        headings_style=headings,
        borders_layout="HORIZONTAL_LINES",
        line_height=4.0,
        padding=(1.4, 1.6),
        v_align="TOP",
    ) as out:
        out.row([pdf.clean(h) for h in table.headers])
        for i, row in enumerate(table.rows):
            tone = table.tones[i] if i < len(table.tones) else ""
            style = FontFace(fill_color=TONES[tone][0]) if tone else None
            out.row([pdf.clean(cell) for cell in row], style=style)
    if table.note:
        pdf.set_font(FONT, "", 7.5)
        pdf.set_text_color(*MUTED)
        pdf.multi_cell(0, 4, pdf.clean(table.note), new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.ln(3)
