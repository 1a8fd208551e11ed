"""HTML reports: the jinja2 template in resources/report/, charts inline as PNG data URIs (one portable file)."""

from __future__ import annotations

import base64
from importlib import resources
from pathlib import Path

import jinja2
import markupsafe

from console.reports.export.atomic import write_atomic
from console.reports.export.report import Report
from console.reports.export.tables import clean_text

TEMPLATE = "report.html.j2"


def _finalize(value: object) -> object:
    """Every value the template prints: text loses NUL and bidirectional controls (see ``clean_text``)."""
    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return clean_text(value)
    return value


def _environment() -> jinja2.Environment:
    folder = resources.files("resources") / "report"
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: (folder / name).read_text(encoding="utf-8")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize,
    )
    env.filters["b64"] = lambda data: base64.b64encode(data).decode("ascii")
    return env


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page."""
    return _environment().get_template(TEMPLATE).render(report=report)


def write_html(report: Report, path: Path) -> Path:
    data = render_html(report).encode("utf-8")
    return write_atomic(path, lambda stream: stream.write(data))
