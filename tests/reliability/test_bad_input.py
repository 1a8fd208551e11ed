"""Bad input never crashes a parser: every channel parser, the survey answer parser, the summary loader, the
SLA policy loader and the settings loader take recorded payloads with fields swapped for junk, deleted or
retyped, and either parse them or refuse them with their documented error."""

from __future__ import annotations

import contextlib
import json
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from console.channels import bluesky, discourse, facebook, mastodon, x, youtube
from console.channels.base import InboundItem
from console.channels.http import parse_iso
from console.reports.export.codec import InvalidSummary, dumps, parse_summary
from console.reports.export.service import ExportService
from console.reports.summary import ShiftSummary
from console.sandbox.faults import parse_fault_spec
from console.shifts.service import ShiftService
from console.sla.policy import PolicyError, PolicySet, shipped_policy
from console.surveys.answers import AnswerKind, parse_answer
from storage import settings as settings_module
from storage.db import open_database
from storage.settings import WARN_FRACTION, Setting, SettingsRepo
from storage.shifts import ShiftRepo
from tests.fakes.clock import FakeClock
from tests.reliability.conftest import TALLY, examples

DATA = Path(__file__).resolve().parents[1] / "data"
EXAMPLES = examples(60)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Hostile text: controls, bidi overrides, zero-width, emoji sequences, surrogates' neighbours, markup.
NASTY = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "\u202eevil\u202c",
            "\u200b\u200c\u200d\ufeff",
            "👩‍👩‍👧‍👦🏳️‍🌈",
            "<script>alert(1)</script>",
            "\x00\x07\x1b[31m",
            "9" * 400,
            "-1e309",
            "NaN",
            "2026-13-45T25:61:61Z",
        ]
    ),
)
JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | NASTY,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out += _paths(child, (*prefix, i))
    return out


def _mutate(doc: Any, path: tuple[Any, ...], junk: Any, delete: bool) -> Any:
    doc = json.loads(json.dumps(doc))
    if not path:
        return junk
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = junk
    return doc


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> Any:
    """A recorded payload with one to three nodes replaced by junk (or deleted)."""
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        doc = _mutate(doc, path, draw(JUNK), draw(st.booleans()))
    return doc


def _load(rel: str) -> Any:
    return json.loads((DATA / rel).read_text(encoding="utf-8"))


def _items(result: Any) -> list[InboundItem]:
    if isinstance(result, tuple):
        result = result[0]
    if isinstance(result, list):
        return [i for i in result if isinstance(i, InboundItem)]
    for name in ("items", "mentions", "threads"):
        value = getattr(result, name, None)
        if isinstance(value, list):
            return [i for i in value if isinstance(i, InboundItem)]
    return []


PARSERS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "mastodon notifications": ("mastodon/notifications_mixed.json", mastodon.parse_notifications),
    "mastodon dm": ("mastodon/dm.json", mastodon.parse_notifications),
    "mastodon instance": ("mastodon/links_and_entities.json", mastodon.parse_instance),
    "bluesky notifications": ("bluesky/notifications_page.json", bluesky.parse_notifications),
    "bluesky thread": ("bluesky/notifications_page.json", bluesky.parse_thread),
    "bluesky chat": ("bluesky/notifications_page.json", bluesky.parse_chat_log),
    "discourse notifications": ("discourse/notifications_mixed.json", discourse.parse_notifications),
    "discourse post": ("discourse/post_reply.json", lambda p: discourse.parse_post(p, base_url="https://f.example")),
    "discourse topic": (
        "discourse/post_reply.json",
        lambda p: discourse.parse_topic_posts({"post_stream": {"posts": [p]}}, base_url="https://f.example"),
    ),
    "facebook comments": ("facebook/comments.json", lambda p: facebook.parse_comments(p, post_id="1_2")),
    "facebook conversation": ("facebook/conversation.json", lambda p: facebook.parse_conversation(p, page_id="1")),
    "x mentions": ("x/mentions_page.json", x.parse_mentions),
    "youtube threads": ("youtube/threads_page.json", youtube.parse_threads),
    "youtube comments": ("youtube/threads_page.json", lambda p: youtube.parse_comments(p, video_id="v")),
}


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_channel_parser_survives_mutated_recorded_payloads(name: str) -> None:
    rel, parse = PARSERS[name]
    doc = _load(rel)

    @FUZZ
    @given(mutated(doc))
    def check(payload: Any) -> None:
        try:
            result = parse(payload)
        except ValueError:
            return  # the documented refusal: the connector quarantines or reports it
        for item in _items(result):
            assert isinstance(item.text, str)
            assert isinstance(item.external_id, str) and item.external_id
            assert isinstance(item.posted_at, int | float)

    check()
    TALLY["bad inputs tried"] += EXAMPLES


@FUZZ
@given(st.text(max_size=200), st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=5))
def test_small_wire_parsers_never_raise_unexpectedly(text: str, headers: dict[str, str]) -> None:
    mastodon.parse_rate_limit(headers)
    mastodon.parse_retry_after(text, now=1_800_000_000.0)
    x.parse_tokens(text)
    with contextlib.suppress(ValueError):
        parse_iso(text)
    with contextlib.suppress(ValueError):
        parse_fault_spec(text)
    TALLY["bad inputs tried"] += 1


SURVEY_WORDS = st.sampled_from(
    ["1", "7", "2/7", "two", "very easy", "not easy", "3️⃣", "8/10", "order 2", "#51234", "\u202e5", "٣", "５"]
)


@FUZZ
@given(st.lists(st.one_of(SURVEY_WORDS, NASTY), max_size=8).map(" ".join))
def test_survey_answer_parser_scores_only_on_the_scale(text: str) -> None:
    parsed = parse_answer(text)
    assert isinstance(parsed.kind, AnswerKind)
    if parsed.score is not None:
        assert parsed.kind is AnswerKind.SCORED
        assert 1 <= parsed.score <= 7
    TALLY["bad inputs tried"] += 1


@pytest.fixture(scope="module")
def summary_json(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("summary") / "care.db"
    db = open_database(path)
    clock = FakeClock()
    shifts = ShiftService(ShiftRepo(db), SettingsRepo(db), clock)
    shifts.start("Robin \u202eniboR")
    clock.advance(3600)
    shifts.end("<b>notes</b> \x00 👩‍👩‍👧")
    service = ExportService(path, clock, SettingsRepo(db))
    summary = service.build(None)
    service.close()
    db.conn.close()
    return json.loads(dumps(summary))


def test_summary_loader_refuses_mutated_files_with_a_message(summary_json: Any) -> None:
    @FUZZ
    @given(mutated(summary_json))
    def check(doc: Any) -> None:
        try:
            raw = json.dumps(doc, ensure_ascii=False).encode()
        except ValueError:
            return
        try:
            summary = parse_summary(raw, name="s.json")
        except InvalidSummary as exc:
            message = str(exc)
        else:
            assert isinstance(summary, ShiftSummary)
            return
        assert message.startswith("s.json: ")

    check()
    TALLY["bad inputs tried"] += EXAMPLES


@FUZZ
@given(st.binary(max_size=300))
def test_summary_loader_refuses_random_bytes(raw: bytes) -> None:
    with contextlib.suppress(InvalidSummary):
        parse_summary(raw, name="s.json")
    TALLY["bad inputs tried"] += 1


def test_sla_policy_loader_refuses_mutated_policies() -> None:
    doc = json.loads(shipped_policy().to_json())

    @FUZZ
    @given(mutated(doc))
    def check(mutant: Any) -> None:
        try:
            PolicySet.from_json(json.dumps(mutant))
        except PolicyError as exc:
            message = str(exc)
        else:
            return
        assert message

    check()
    TALLY["bad inputs tried"] += EXAMPLES


ALL_SETTINGS = [v for v in vars(settings_module).values() if isinstance(v, Setting)]


@pytest.fixture(scope="module")
def settings_db() -> Any:
    db = open_database(None)
    yield db
    db.conn.close()


@FUZZ
@given(
    st.sampled_from(ALL_SETTINGS),
    st.one_of(
        JUNK.map(lambda v: json.dumps(v, allow_nan=True)),
        st.text(string.printable, max_size=30),
        st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "true", "null", "[]"]),
    ),
)
@example(WARN_FRACTION, "NaN")  # found by this test: a NaN warn fraction was returned as-is
def test_settings_loader_falls_back_to_the_default_on_junk(
    settings_db: sqlite_utils.Database, setting: Setting[Any], stored: str
) -> None:
    settings_db.conn.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (setting.key, stored),
    )
    value = SettingsRepo(settings_db).get(setting)
    assert type(value) is setting.type
    if isinstance(value, int | float) and not isinstance(value, bool):
        assert value == value  # never NaN
        if setting.minimum is not None:
            assert value >= setting.minimum
        if setting.maximum is not None:
            assert value <= setting.maximum
    TALLY["bad inputs tried"] += 1
