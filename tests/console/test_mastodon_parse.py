"""Pure Mastodon parsers on hand-written JSON (tests/data/mastodon) and on recorded real responses."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.channels.mastodon import (
    InstanceLimits,
    RateLimitInfo,
    html_to_text,
    id_key,
    parse_instance,
    parse_notifications,
    parse_rate_limit,
    parse_retry_after,
    parse_status,
    parse_time,
    reply_length,
    with_mention,
)
from storage.rows import MentionKind
from tests import shared_fixtures

DATA = Path(__file__).resolve().parents[1] / "data" / "mastodon"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def recorded(name: str) -> dict[str, Any]:
    """A recorded interaction from ../shared/fixtures/mastodon (never copied into the project)."""
    return shared_fixtures.recorded("mastodon", name)


# -- html_to_text -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("<p>hello</p>", "hello"),
        ("<p>one</p><p>two</p>", "one\n\ntwo"),
        ("<p>one<br>two<br/>three</p>", "one\ntwo\nthree"),
        ("<p>a</p>\n<p>b</p>", "a\n\nb"),
        ("plain text, no markup", "plain text, no markup"),
        ("", ""),
        ("<p></p><p>  </p>", ""),
        ("&lt;b&gt;not bold&lt;/b&gt; &amp;&nbsp;&#128512;", "<b>not bold</b> &\xa0😀"),
        (
            '<p><span class="h-card" translate="no"><a href="https://h/@brand" class="u-url mention">'
            "@<span>brand</span></a></span> hi</p>",
            "@brand hi",
        ),
        (
            '<a href="https://example.com/a/very/long/path"><span class="invisible">https://</span>'
            '<span class="ellipsis">example.com/a/very/lo</span><span class="invisible">ng/path</span></a>',
            "example.com/a/very/lo…",
        ),
        (
            '<a href="https://x.example/"><span class="invisible">https://</span><span>x.example/</span></a>',
            "x.example/",
        ),
        ('<p>#<span class="invisible">nested <span>deeper</span> still hidden</span>tag</p>', "#tag"),
        ("<ul><li>first</li><li>second</li></ul>", "first\nsecond"),
        ("<p>before<script>alert(1)</script> after</p>", "before after"),
        ("<![foo[bar]]>kept", "kept"),
    ],
)
def test_html_to_text_examples(content: str, expected: str) -> None:
    assert html_to_text(content) == expected


def test_html_to_text_links_entities_and_emoji() -> None:
    item = parse_status(load("links_and_entities.json"))
    assert item.text == (
        "Hi @brand, my order & invoice are <missing> \"again\" 'sigh' 😤🇩🇪\n\n"
        "See shop.example.com/orders/12345/…\n"
        "and x.example/a #help"
    )


@given(st.text())
def test_html_to_text_never_raises_on_any_text(content: str) -> None:
    assert isinstance(html_to_text(content), str)


_TAGS = st.sampled_from(
    [
        "<p>",
        "</p>",
        "<br>",
        "<br/>",
        '<span class="invisible">',
        '<span class="ellipsis">',
        '<span class="h-card" translate="no">',
        "<span>",
        "</span>",
        '<a href="https://h.example/@u" class="u-url mention">',
        "</a>",
        "<strong>",
        "</strong>",
        "<ul>",
        "<li>",
        "</li>",
        "</ul>",
        "<blockquote>",
        "</blockquote>",
        "<!-- a comment -->",
    ]
)
_SAFE_TEXT = st.text(alphabet=st.characters(exclude_characters="<>&", codec="utf-8"))


@given(st.lists(st.one_of(_TAGS, _SAFE_TEXT), max_size=30))
def test_html_to_text_leaves_no_tags_from_tag_soup(tokens: list[str]) -> None:
    # Unbalanced, misnested but syntactically valid tags with text that has no "<", ">" or "&":
    # nothing of the markup may survive.
    text = html_to_text("".join(tokens))
    assert "<" not in text
    assert ">" not in text


_PLAIN = st.text(alphabet=st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp", "Zs")) | st.just(" "), max_size=40)


@given(_PLAIN)
def test_html_to_text_round_trips_escaped_plain_text(text: str) -> None:
    assert html_to_text(f"<p>{html.escape(text)}</p>") == text.strip()


@given(st.lists(_PLAIN.map(str.strip).filter(bool), min_size=1, max_size=5))
def test_html_to_text_separates_paragraphs_with_a_blank_line(paragraphs: list[str]) -> None:
    content = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    assert html_to_text(content) == "\n\n".join(paragraphs)


# -- ids and times --------------------------------------------------------------------------------


@given(st.integers(min_value=0), st.integers(min_value=0))
def test_id_key_orders_snowflakes_numerically(a: int, b: int) -> None:
    assert (id_key(str(a)) < id_key(str(b))) == (a < b)
    assert (id_key(str(a)) == id_key(str(b))) == (a == b)


@given(st.lists(st.text(min_size=1), min_size=1))
def test_id_key_puts_shorter_ids_first_and_never_casts(ids: list[str]) -> None:
    ordered = sorted(ids, key=id_key)
    lengths = [len(i) for i in ordered]
    assert lengths == sorted(lengths)
    assert sorted(ordered) == sorted(ids)


def test_id_key_orders_ulids_lexically() -> None:
    ulids = ["01HV0000000000000000000002", "01HV0000000000000000000001", "01HZ0000000000000000000000"]
    assert sorted(ulids, key=id_key) == sorted(ulids)


@pytest.mark.parametrize(
    ("iso", "expected"),
    [
        ("2026-01-01T00:00:00Z", 1_767_225_600),
        ("2026-01-01T00:00:00.999Z", 1_767_225_600),
        ("2026-01-01T01:00:00+01:00", 1_767_225_600),
        ("2026-01-01T00:00:00", 1_767_225_600),
        ("2026-08-01T13:55:00.940463Z", 1_785_592_500),
    ],
)
def test_parse_time(iso: str, expected: int) -> None:
    assert parse_time(iso) == expected


@pytest.mark.parametrize("bad", ["", "yesterday", "2026-13-01T00:00:00Z"])
def test_parse_time_rejects_garbage(bad: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_time(bad)


# -- statuses and notifications (hand-written) -----------------------------------------------------


def test_parse_notifications_direct_message() -> None:
    page = parse_notifications(load("dm.json"))
    assert page.skipped == []
    assert page.ids == ["501"]
    assert page.notification_ids == ["501"]
    (item,) = page.items
    assert item.external_id == "110000000000000501"  # the status id, not the notification id
    assert item.kind is MentionKind.DIRECT
    assert item.visibility == "direct"
    assert item.author_handle == "carol@other.example"
    assert item.author_id == "9001"
    assert item.author_name == "carol"  # empty display_name falls back to username
    assert item.text == "@brand my card was charged twice, order 4471"
    assert item.url == "https://other.example/@carol/110000000000000501"
    assert item.posted_at == parse_time("2026-01-02T09:30:04Z")
    assert item.parent_external_id is None
    assert item.raw["id"] == "110000000000000501"


def test_parse_notifications_reply_keeps_parent_and_falls_back_to_uri() -> None:
    (item,) = parse_notifications(load("reply.json")).items
    assert item.parent_external_id == "110000000000000700"
    assert item.url == "https://brand.example/users/dave/statuses/110000000000000777"  # url was null
    assert item.kind is MentionKind.PUBLIC
    assert item.visibility == "unlisted"
    assert item.author_name == "Dave :blobcat:"


def test_parse_notifications_skips_malformed_and_ignores_other_types() -> None:
    page = parse_notifications(load("notifications_mixed.json"))
    assert [item.external_id for item in page.items] == ["110000000000000610"]
    assert page.ids == ["610", "609", "608", "607"]  # the follow still moves the cursor
    assert page.max_id == "610"
    assert page.size == 6
    skipped = dict(page.skipped)
    assert set(skipped) == {"609", "607", "?"}
    assert "without a status" in skipped["609"]
    assert "account" in skipped["607"]
    assert [sid for sid, _ in page.skipped].count("?") == 2


def test_parse_notifications_rejects_a_non_list() -> None:
    with pytest.raises(ValueError, match="list"):
        parse_notifications({"error": "nope"})


def test_parse_status_requires_visibility() -> None:
    status = load("links_and_entities.json")
    del status["visibility"]
    with pytest.raises(ValueError, match="visibility"):
        parse_status(status)


def test_parse_status_accepts_integer_ids_as_strings() -> None:
    status = load("links_and_entities.json")
    status["id"] = 123
    assert parse_status(status).external_id == "123"


# -- headers ----------------------------------------------------------------------------------------


def test_parse_rate_limit_is_case_insensitive_and_tolerant() -> None:
    info = parse_rate_limit(
        {"x-ratelimit-limit": "300", "X-RATELIMIT-REMAINING": "12", "X-RateLimit-Reset": "2026-01-01T00:05:00Z"}
    )
    assert info == RateLimitInfo(limit=300, remaining=12, reset_at=1_767_225_900.0)
    assert parse_rate_limit({}) is None
    assert parse_rate_limit({"X-RateLimit-Limit": "x", "X-RateLimit-Remaining": "1"}) is None
    no_reset = parse_rate_limit({"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "30"})
    assert no_reset == RateLimitInfo(300, 30, None)
    assert no_reset.should_throttle


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 1_000_120.0),
        ("0", 1_000_000.0),
        ("-5", 1_000_000.0),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 1_000_000.0),  # in the past: not before now
        ("Wed, 21 Oct 2015 07:28:00 GMT", 1_445_412_480.0),
        ("soon", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=1_000_000.0) == expected


# -- instance and lengths -----------------------------------------------------------------------------


def test_parse_instance_defaults_and_v1_fallback() -> None:
    assert parse_instance({}) == InstanceLimits(500, 23)
    assert parse_instance({"max_toot_chars": 5000}) == InstanceLimits(5000, 23)
    v2 = {"configuration": {"statuses": {"max_characters": 1000, "characters_reserved_per_url": 30}}}
    assert parse_instance(v2) == InstanceLimits(1000, 30)
    with pytest.raises(ValueError, match="instance"):
        parse_instance([])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", 5),
        ("https://example.com/a/very/long/path/that/goes/on?and=on", 23),
        ("see https://example.com.", 4 + 23 + 1),
        ("http://a.b and https://c.d", 23 + 5 + 23),
        ("@alice@other.social thanks", len("@alice thanks")),
        ("@alice thanks", len("@alice thanks")),
        ("mail me at bob@example.com", len("mail me at bob@example.com")),
        ("https://h.example/@carol@other.social", 23),  # a mention inside a URL is part of the URL
        ("👍🏽🇩🇪é", 3),  # skin tone, flag pair and combining accent are one character each
        ("👨‍👩‍👧", 1),
        ("", 0),
    ],
)
def test_reply_length(text: str, expected: int) -> None:
    assert reply_length(text) == expected


def test_reply_length_uses_the_instance_url_weight() -> None:
    assert reply_length("https://example.com", characters_reserved_per_url=10) == 10


@pytest.mark.parametrize(
    ("text", "handle", "expected"),
    [
        ("thanks!", "carol@other.example", "@carol@other.example thanks!"),
        ("@Carol@Other.Example thanks!", "carol@other.example", "@Carol@Other.Example thanks!"),
        ("Hi @carol@other.example, on it.", "carol@other.example", "Hi @carol@other.example, on it."),
        ("@carol thanks", "carol@other.example", "@carol@other.example @carol thanks"),
        ("@dave2 hi", "dave", "@dave @dave2 hi"),
        ("@dave.smith hi", "dave", "@dave @dave.smith hi"),
        ("@dave@elsewhere.example hi", "dave", "@dave @dave@elsewhere.example hi"),
        ("mail dave@example.com", "dave", "@dave mail dave@example.com"),
        ("ok @dave.", "dave", "ok @dave."),
        ("ok", "@dave", "@dave ok"),
        ("", "dave", "@dave"),
    ],
)
def test_with_mention(text: str, handle: str, expected: str) -> None:
    assert with_mention(text, handle) == expected


# -- recorded real responses ----------------------------------------------------------------------------

V1_MENTION_PAGES = [
    "notifications_mentions_page1.json",
    "notifications_exclude_and_types.json",
    "notifications_types_follow_mention.json",
]


@pytest.mark.parametrize("name", V1_MENTION_PAGES)
def test_recorded_mention_pages_parse_cleanly(name: str) -> None:
    fixture = recorded(name)
    body = fixture["response"]["json"]
    page = parse_notifications(body)
    assert page.skipped == []
    assert page.ids == [entry["id"] for entry in body]
    mentions = [entry for entry in body if entry["type"] == "mention"]
    assert [item.external_id for item in page.items] == [entry["status"]["id"] for entry in mentions]
    for item in page.items:
        assert item.text == "@mastodonpy_test hello!"
        assert item.author_handle == "admin"
        assert item.author_name == "admin"
        assert item.kind is MentionKind.PUBLIC
        assert item.url.startswith("https://mastodon.example/@admin/")
        assert "<" not in item.text


def test_recorded_mention_page_values() -> None:
    fixture = recorded("notifications_mentions_page1.json")
    page = parse_notifications(fixture["response"]["json"])
    assert page.max_id == "21"
    (item,) = page.items
    assert item.external_id == "117020577157693549"
    assert item.posted_at == parse_time("2026-08-01T13:51:42Z")
    links = httpx.Response(200, headers={"Link": fixture["response"]["headers"]["Link"]}).links  # httpx parses Link
    assert links["prev"]["url"].endswith("min_id=21&types%5B%5D=mention")
    assert "max_id=21" in links["next"]["url"]
    info = parse_rate_limit(fixture["response"]["headers"])
    assert info is not None
    assert (info.limit, info.remaining) == (300, 299)
    assert info.reset_at == pytest.approx(parse_time("2026-08-01T13:55:00Z") + 0.940463)


@pytest.mark.parametrize(
    "name", ["notifications_exclude_mention_empty.json", "notifications_types_follow_request_empty.json"]
)
def test_recorded_empty_pages(name: str) -> None:
    page = parse_notifications(recorded(name)["response"]["json"])
    assert (page.items, page.ids, page.max_id, page.skipped) == ([], [], None, [])


def test_recorded_single_notification_status() -> None:
    body = recorded("notification_get_single.json")["response"]["json"]
    assert parse_notifications([body]).items[0].external_id == body["status"]["id"]


@pytest.mark.parametrize("name", ["notifications_v2_grouped_page1.json", "notifications_v2_grouped_page2.json"])
def test_recorded_side_loaded_statuses_parse(name: str) -> None:
    statuses = recorded(name)["response"]["json"]["statuses"]
    assert statuses
    for status in statuses:
        item = parse_status(status)
        assert item.external_id == status["id"]
        assert item.text.startswith("@mastodonpy_test hey how you doing - ")


def test_recorded_conversations_are_direct() -> None:
    conversations = recorded("conversations_list.json")["response"]["json"]
    items = [parse_status(c["last_status"]) for c in conversations]
    assert {item.kind for item in items} == {MentionKind.DIRECT}
    assert items[0].text == "@admin ilu bby ;3"
    assert items[1].parent_external_id == "117020588315335369"


@pytest.mark.parametrize(
    ("name", "visibility", "kind"),
    [
        ("status_post_public.json", "public", MentionKind.PUBLIC),
        ("status_post_unlisted_cw.json", "unlisted", MentionKind.PUBLIC),
        ("status_post_private.json", "private", MentionKind.PUBLIC),
        ("status_post_direct.json", "direct", MentionKind.DIRECT),
    ],
)
def test_recorded_posted_statuses(name: str, visibility: str, kind: MentionKind) -> None:
    item = parse_status(recorded(name)["response"]["json"])
    assert (item.visibility, item.kind, item.text) == (visibility, kind, "Toot!")


def test_recorded_reply_status() -> None:
    fixture = recorded("status_reply.json")
    item = parse_status(fixture["response"]["json"])
    assert item.parent_external_id == fixture["request"]["body"]["in_reply_to_id"]
    assert item.text == fixture["request"]["body"]["status"]


def test_recorded_instance_limits() -> None:
    payload = recorded("instance_v2.json")["response"]["json"]
    assert parse_instance(payload) == InstanceLimits(max_characters=500, characters_reserved_per_url=23)
