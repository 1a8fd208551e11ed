"""The JSON exchange format of shift summaries: versioned, validated field by field on load, clear errors."""

from __future__ import annotations

import dataclasses
import json
import math
import types
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from console.reports.export.atomic import ExportError, write_atomic
from console.reports.summary import SCHEMA_ID, SCHEMA_VERSION, ShiftSummary

#: A summary of a very long shift is a few MB; anything far larger is not a summary (or is an attack).
MAX_BYTES = 100 * 1024 * 1024

T = TypeVar("T")


class InvalidSummary(ExportError):
    """A file that is not a readable shift summary of a known version."""


def to_dict(summary: ShiftSummary) -> dict[str, Any]:
    """The summary as plain JSON data (schema and version first)."""
    plain: dict[str, Any] = _plain(summary)
    return plain


@cache
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _plain(value: Any) -> Any:
    """``dataclasses.asdict`` without its deep copies (ten times faster on a 10,000-item summary)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: _plain(getattr(value, name)) for name in _names(type(value))}
    return value


def dumps(summary: ShiftSummary) -> bytes:
    return json.dumps(to_dict(summary), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def write_json(summary: ShiftSummary, path: Path) -> Path:
    """Write the summary as JSON, atomically."""
    data = dumps(summary)
    return write_atomic(path, lambda stream: stream.write(data))


def load_summary(path: Path) -> ShiftSummary:
    """Read and validate a summary file.

    Raises:
        InvalidSummary: the message names the file and the problem (too large, not JSON or truncated,
            another kind of file, an unknown version, a missing field or a value of the wrong type).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InvalidSummary(
                f"{path}: the file is {size / 1e6:.0f} MB, far larger than any shift summary "
                f"(limit {MAX_BYTES // 1_000_000} MB); it was not read."
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidSummary(f"{path}: cannot be read: {exc.strerror or exc}.") from exc
    return parse_summary(raw, name=str(path))


def parse_summary(raw: bytes, *, name: str = "summary") -> ShiftSummary:
    """Validate and decode summary JSON bytes; see ``load_summary``."""
    if len(raw) > MAX_BYTES:
        raise InvalidSummary(f"{name}: {len(raw) / 1e6:.0f} MB is far larger than any shift summary.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidSummary(f"{name}: is not a text (UTF-8) file, so not a shift summary.") from exc
    if not text.strip():
        raise InvalidSummary(f"{name}: the file is empty.")
    try:
        data = json.loads(text)
    except RecursionError as exc:
        raise InvalidSummary(f"{name}: is nested too deeply to be a shift summary.") from exc
    except json.JSONDecodeError as exc:
        hint = "" if text.rstrip().endswith(("}", "]")) else " (the file looks truncated)"
        raise InvalidSummary(
            f"{name}: is not valid JSON{hint}: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from exc
    if not isinstance(data, dict):
        raise InvalidSummary(f"{name}: is not a Care Console shift summary (expected a JSON object).")
    if data.get("schema") != SCHEMA_ID:
        raise InvalidSummary(
            f"{name}: is not a Care Console shift summary (schema {data.get('schema')!r}, expected {SCHEMA_ID!r})."
        )
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise InvalidSummary(f"{name}: has no valid summary version (found {version!r}).")
    if version > SCHEMA_VERSION:
        raise InvalidSummary(
            f"{name}: was written by a newer Care Console (summary version {version}; this version reads up to "
            f"{SCHEMA_VERSION}). Update the app to open it."
        )
    if version < 1:
        raise InvalidSummary(f"{name}: has an unknown summary version {version}.")
    summary: ShiftSummary = _decode(ShiftSummary, data, name, "")
    return summary


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _kind(tp: Any) -> str:
    names = {int: "a whole number", float: "a number", str: "text", bool: "true or false", list: "a list"}
    if tp in names:
        return names[tp]
    if get_origin(tp) is list:
        return "a list"
    if dataclasses.is_dataclass(tp):
        return "an object"
    return str(tp)


def _got(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"text {value[:30]!r}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return repr(value)[:30]


def _decode(tp: Any, value: Any, name: str, where: str) -> Any:
    def fail(expected: str) -> InvalidSummary:
        return InvalidSummary(f"{name}: {where or 'the top level'}: expected {expected}, found {_got(value)}.")

    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise fail(" or ".join(_kind(a) for a in args if a is not type(None)))
        (inner,) = [a for a in args if a is not type(None)]
        return _decode(inner, value, name, where)
    if origin is list:
        if not isinstance(value, list):
            raise fail("a list")
        (inner,) = get_args(tp)
        return [_decode(inner, v, name, f"{where}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise fail("an object")
        hints = _hints(tp)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(tp):
            path = f"{where}.{f.name}" if where else f.name
            if f.name not in value:
                if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                    continue
                raise InvalidSummary(f"{name}: the field {path!r} is missing.")
            kwargs[f.name] = _decode(hints[f.name], value[f.name], name, path)
        return tp(**kwargs)
    if tp is bool:
        if not isinstance(value, bool):
            raise fail("true or false")
        return value
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise fail("a whole number")
        return value
    if tp is float:
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise fail("a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise fail("text")
        return value
    raise TypeError(f"no decoder for {tp!r}")  # a programming error: the schema uses an unsupported type
