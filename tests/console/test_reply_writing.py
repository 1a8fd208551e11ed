"""Writing replies: placeholders and blanks, template search, shipped defaults, the phrase check, counters, privacy."""

from __future__ import annotations

import pytest
import sqlite_utils

from console.replies.checks import (
    PrivacyKind,
    bluesky_length,
    check_length,
    find_private_data,
    x_weighted_length,
)
from console.replies.phrases import PhraseChecker, load_phrases
from console.replies.templates import (
    TemplateService,
    blanks,
    combine,
    fill,
    first_name,
    has_blanks,
    load_defaults,
    placeholder_values,
    search,
)
from storage.templates import TemplateRepo, TemplateRow
from tests.fakes.clock import FakeClock


def row(name: str, body: str, *, tags: tuple[str, ...] = (), channel: str | None = None, uses: int = 0) -> TemplateRow:
    return TemplateRow(0, name, body, channel, tags, uses, 0, 0, {})


# ------------------------------------------------------------------ placeholders and blanks


def test_fill_replaces_known_placeholders() -> None:
    values = {"first_name": "Ana", "agent_name": "Sam", "handle": "@ana"}
    assert fill("Hi {first_name}, {agent_name} here ({handle}).", values) == "Hi Ana, Sam here (@ana)."


def test_fill_turns_missing_values_into_blanks_and_keeps_unknown_braces() -> None:
    assert (
        fill("Back by {due_time}. {not_a_placeholder}", {"due_time": " "}) == "Back by [due time]. {not_a_placeholder}"
    )


def test_blanks_are_found_in_order_and_links_are_not_blanks() -> None:
    text = "Your [item] ships [when]. See [docs](https://x.example)."
    assert [(b.label, text[b.start : b.end]) for b in blanks(text)] == [("item", "[item]"), ("when", "[when]")]
    assert has_blanks(text)
    assert not has_blanks("All filled in.")


@pytest.mark.parametrize(
    ("display", "expected"),
    [("Ana Lima", "Ana"), ("🌻 Priya Raman", "Priya"), ("grumpy cat 😾", "grumpy"), ("🙂", ""), ("", "")],
)
def test_first_name(display: str, expected: str) -> None:
    assert first_name(display) == expected


def test_placeholder_values_fall_back_to_the_handle() -> None:
    values = placeholder_values(
        customer_name="", handle="ana@x.social", agent_name="Sam", channel="Mastodon", due_at=None
    )
    assert values["customer_name"] == "ana@x.social"
    assert values["first_name"] == "ana@x.social"
    assert values["handle"] == "@ana@x.social"
    assert values["due_time"] == ""


def test_combine_joins_paragraphs_and_drops_repeats() -> None:
    assert combine(["Hi Ana,", "", "Hi Ana,", "  Here is the fix.  "]) == "Hi Ana,\n\nHere is the fix."


# ------------------------------------------------------------------ search


TEMPLATES = [
    row("Greeting", "Hi {first_name}, thanks for reaching out", tags=("opening",), uses=9),
    row("Apology: delay", "I'm really sorry your order is late", tags=("apology", "delivery")),
    row("Apology: our mistake", "you're right, and I'm sorry", tags=("apology",)),
    row("Move to DM", "send us a direct message", tags=("privacy",), channel="mastodon"),
]


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("apology late", "Apology: delay"),
        ("apol mist", "Apology: our mistake"),
        ("aplgy", "Apology: delay"),  # letters in order, typo-tolerant
        ("privacy", "Move to DM"),
        ("reaching", "Greeting"),  # bodies are searched too
        ("", "Greeting"),  # empty query: most used first
    ],
)
def test_search_ranks_names_tags_and_bodies(query: str, first: str) -> None:
    assert search(TEMPLATES, query)[0].name == first


def test_search_filters_by_channel_and_requires_every_word() -> None:
    assert "Move to DM" not in [t.name for t in search(TEMPLATES, "", channel="bluesky")]
    assert search(TEMPLATES, "apology zzzz") == []


def test_shipped_defaults_are_warm_and_cover_holding_and_apologies(db: sqlite_utils.Database) -> None:
    defaults = load_defaults()
    tags = {t for entry in defaults for t in entry.get("tags", [])}  # type: ignore[attr-defined]
    assert {"holding", "apology", "opening", "closing"} <= tags
    checker = PhraseChecker()
    for entry in defaults:
        body = str(entry["body"])
        assert checker.check(body) == [], entry["name"]  # our own templates pass our phrase check
        assert "{first_name}" in body or "{agent_name}" in body or entry["name"] == "Next step"
    service = TemplateService(TemplateRepo(db), FakeClock())
    assert service.ensure_defaults() == len(defaults)
    assert service.ensure_defaults() == 0  # only into an empty library


def test_template_service_variants_use_counts_and_unique_names(db: sqlite_utils.Database) -> None:
    service = TemplateService(TemplateRepo(db), FakeClock())
    tid = service.save(
        name="Hello", body="Hi {first_name}!", tags=["opening"], variants={"bluesky": "Hey {first_name}"}
    )
    template = service.get(tid)
    assert template is not None
    assert service.render(template, {"first_name": "Ana"}, channel="bluesky") == "Hey Ana"
    assert service.render(template, {"first_name": "Ana"}, channel="mastodon") == "Hi Ana!"
    service.record_use([tid])
    service.record_use([tid])
    assert service.all()[0].use_count == 2
    with pytest.raises(ValueError, match="already a template"):
        service.save(name="Hello", body="again")
    with pytest.raises(ValueError, match="name and a text"):
        service.save(name=" ", body="x")


# ------------------------------------------------------------------ phrase check


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("We apologise for any inconvenience caused.", "we apologise for any inconvenience"),
        ("we APOLOGIZE for any   inconvenience", "we apologise for any inconvenience"),
        ("Please be advised that your parcel left.", "please be advised"),
        ("As per our policy, refunds take 5 days.", "as per our policy"),
        ("Your call is important to us.", "your call is important to us"),
        ("Don’t hesitate to contact us!", "do not hesitate to contact us"),
        ("Kindly send a DM.", "kindly"),
    ],
)
def test_phrase_check_finds_stiff_phrases(text: str, phrase: str) -> None:
    (hit,) = PhraseChecker().check(text)
    assert hit.phrase == phrase
    assert hit.suggestion
    assert text[hit.start : hit.end].strip()


def test_phrase_check_leaves_friendly_text_alone_and_words_inside_words() -> None:
    assert PhraseChecker().check("Thanks Ana, I'm sorry about this. I'll fix it today. Unkindly? no.") == []


def test_every_shipped_phrase_matches_itself() -> None:
    for phrase in load_phrases():
        assert phrase.pattern.search(phrase.phrase), phrase.phrase


# ------------------------------------------------------------------ length per channel


@pytest.mark.parametrize(
    ("channel", "text", "handle", "count"),
    [
        ("mastodon", "hello", "ana", 10),  # "@ana hello"
        ("mastodon", "see https://example.com/a/very/long/path?q=1", "ana", 5 + 4 + 23),
        ("mastodon", "hi @ana@remote.example", "ana@remote.example", 7),  # remote mention counts as @ana
        ("mastodon", "café 👍🏽 👨‍👩‍👧", "", 8),  # combining marks, skin tone and ZWJ family are one each
        ("x", "hello", "ana", 10),
        ("x", "日本語", "", 6),  # CJK weighs 2
        ("x", "👍🏽 ok", "", 5),  # an emoji sequence weighs 2
        ("x", "go https://example.com/" + "a" * 100, "", 3 + 23),
        ("x", "e\u0301", "", 1),  # NFC: e + combining acute is one character
        ("bluesky", "hello", "ana.bsky.social", 22),  # "@ana.bsky.social hello"
        ("bluesky", "👨‍👩‍👧‍👦🇯🇵 e\u0301", "", 4),  # graphemes
        ("bluesky", "漢字", "", 2),
        ("messenger", "hello", "ana", 5),  # no handle in a private message
    ],
)
def test_length_counting_per_channel(channel: str, text: str, handle: str, count: int) -> None:
    assert check_length(channel, text, handle=handle).count == count


@pytest.mark.parametrize(("channel", "limit"), [("mastodon", 500), ("x", 280), ("bluesky", 300), ("messenger", 2000)])
def test_over_the_limit_blocks_with_a_reason(channel: str, limit: int) -> None:
    ok = check_length(channel, "a" * limit)
    over = check_length(channel, "a" * (limit + 1))
    assert not ok.over and ok.reason == ""
    assert over.over and f"{limit:,}" in over.reason and "1 over" in over.reason


def test_handle_is_counted_against_the_limit() -> None:
    assert check_length("x", "a" * 276, handle="ana").over  # "@ana " makes it 281
    assert not check_length("x", "a" * 276).over


def test_x_and_bluesky_helpers_agree_on_plain_ascii() -> None:
    assert x_weighted_length("plain text") == bluesky_length("plain text") == 10


# ------------------------------------------------------------------ privacy


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("Write to ana.lima@example.com please", [PrivacyKind.EMAIL]),
        ("Call +44 20 7946 0958 today", [PrivacyKind.PHONE]),
        ("Call (555) 123-4567", [PrivacyKind.PHONE]),
        ("Your order #4481923 left", [PrivacyKind.ORDER]),
        ("Order number AB12345 is late", [PrivacyKind.ORDER]),
        ("Ref ORD-99812", [PrivacyKind.ORDER]),
        ("Thanks @ana@example.social, see https://shop.example/orders/123456789", []),
        ("It takes 3 to 5 days, version 2.1", []),
    ],
)
def test_find_private_data(text: str, kinds: list[PrivacyKind]) -> None:
    assert [f.kind for f in find_private_data(text)] == kinds
