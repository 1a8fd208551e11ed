"""orjson decodes sync pages and writes stored raw JSON, and nothing a caller sees changes: every body decodes to
what the standard library made of it (big integers stay integers, NaN, lone surrogates and byte-order marks are
read as before, bad UTF-8 becomes U+FFFD, deep nesting is cut), and raw JSON reads back to the same value."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.channels.base import InboundItem
from console.channels.errors import Transient
from console.channels.http import MAX_JSON_DEPTH, TOO_DEEP, json_body
from console.sync.store_worker import raw_json, storable, to_new_mention, to_rows
from storage.health import QuarantineEntry
from storage.rows import MentionKind


def decode(body: bytes) -> Any:
    return json_body(httpx.Response(200, content=body), host="h", what="GET /x")


def same(a: Any, b: Any) -> bool:
    """Equal, with types (True is not 1, 1.0 is not 1) and NaN equal to itself."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # any size: orjson would make a 20-digit integer a float
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),  # lone surrogates included
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300)
@given(_JSON, st.booleans())
def test_json_body_decodes_like_the_standard_library(value: Any, ascii_only: bool) -> None:
    body = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", errors="surrogatepass")
    assert same(decode(body), json.loads(body))


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": 123456789012345678901234567890}',
        b"[-9223372036854775809, 18446744073709551616]",
        b'"\\ud800 lone"',
        b"[NaN, Infinity, -Infinity, 1e400]",
        b'\xef\xbb\xbf{"a": 1}',
        b'{"a": 1, "a": 2}',
        b'"\\u0000\\u2028"',
        b"[1.0, -0.0, 5e-324, 0.1]",
    ],
)
def test_json_body_keeps_what_orjson_would_read_differently(body: bytes) -> None:
    assert same(decode(body), json.loads(body))


def test_json_body_turns_bad_utf8_into_replacement_characters() -> None:
    assert decode(b'[{"text": "caf\xe9"}, {"text": "ok"}]') == [{"text": "caf\ufffd"}, {"text": "ok"}]


def test_json_body_cuts_deep_nesting_and_keeps_the_rest() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    page = decode(b'[{"id": "1"}, {"id": "2", "x": ' + deep + b"}]")
    assert page[0] == {"id": "1"}
    value, depth = page[1]["x"], 2  # containers above the value: the page and its item
    while isinstance(value, list):
        (value,) = value
        depth += 1
    assert (value, depth) == (TOO_DEEP, MAX_JSON_DEPTH)  # 200 levels kept, the rest cut


def test_json_body_refuses_what_is_not_json() -> None:
    with pytest.raises(Transient, match="not JSON"):
        decode(b"<html>502</html>")
    with pytest.raises(Transient, match="not JSON"):
        decode(b'{"a": 1')


@settings(max_examples=300)
@given(_JSON)
def test_raw_json_reads_back_to_the_same_value(value: Any) -> None:
    try:
        expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except RecursionError:  # pragma: no cover - max_leaves keeps values shallow
        return
    text = raw_json(value)
    assert same(json.loads(text), json.loads(expected))
    if not any(isinstance(v, float) for v in _leaves(value)):
        assert text == expected  # byte for byte, but for how a float is spelt (0.00001 for 1e-05)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def _item(raw: dict[str, Any]) -> InboundItem:
    return InboundItem(
        external_id="1",
        author_id="9",
        author_handle="ann",
        author_name="Ann",
        text="hi",
        url="https://h/@ann/1",
        posted_at=1_780_000_000,
        kind=MentionKind.PUBLIC,
        visibility="public",
        parent_external_id=None,
        raw=raw,
    )


def test_stored_raw_json_keeps_lone_surrogates_big_integers_and_order() -> None:
    raw = {"z": "caf\u00e9 \U0001f600", "id": 2**70, "text": "bad \ud800 char", "a": [1, None, True]}
    row = to_new_mention(7, _item(raw))
    assert row.raw_json == '{"z":"café 😀","id":1180591620717411303424,"text":"bad \ufffd char","a":[1,null,true]}'


def test_raw_json_of_deep_nesting_is_what_the_standard_library_writes() -> None:
    deep: list[Any] = []
    for _ in range(600):  # deeper than orjson writes, as deep as a decoded page can be
        deep = [deep]
    assert raw_json({"x": deep}) == json.dumps({"x": deep}, separators=(",", ":"))


def test_raw_json_writes_non_finite_numbers_as_null() -> None:
    # The one change: NaN and infinities (never valid JSON; only a body the standard library decoded has them).
    assert raw_json({"a": math.nan, "b": [math.inf, -math.inf], "c": 1e-05}) == '{"a":null,"b":[null,null],"c":0.00001}'


def test_an_item_that_cannot_be_written_is_quarantined_alone() -> None:
    rejected: list[QuarantineEntry] = []
    rows = to_rows(7, [_item({"x": object()}), _item({"ok": 1})], rejected)
    assert [row.raw_json for row in rows] == ['{"ok":1}']
    assert [entry.external_id for entry in rejected] == ["1"]


@given(st.text())
def test_storable_replaces_exactly_the_lone_surrogates(text: str) -> None:
    stored = storable(text)
    assert stored == "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    stored.encode("utf-8")  # SQLite can store it
