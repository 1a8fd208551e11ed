"""The fast path of Mastodon's HTML-to-text reads what the reference parser (html.parser) reads, character for
character: on generated Mastodon-like HTML, on tag soup, and on every recorded and sandbox-rendered status."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.channels.mastodon import html_to_text, html_to_text_fast, html_to_text_reference
from console.sandbox import SandboxServer
from tests import shared_fixtures
from tests.fakes.clock import FakeClock

DATA = Path(__file__).resolve().parents[1] / "data"

#: Customer text: any printable character (the sanitizer escapes it), blank runs, tabs and newlines kept.
_RAW_TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc"), include_characters="\n\t\r "), max_size=40)
#: Text as Mastodon writes it (``h()``), or with a raw ``&`` and entities Rails never writes (remote servers).
_TEXT = st.one_of(
    _RAW_TEXT.map(html.escape),
    _RAW_TEXT.map(lambda t: html.escape(t, quote=False)),
    st.sampled_from(["AT&T", "&amp", "&nbsp;", "&#x1F600;", "&#39;", "a &copy b", "&unknown;", "&", "5 > 3", ""]),
)
_NAME = st.from_regex(r"[a-z0-9_]{1,12}", fullmatch=True)
_URL_PART = st.from_regex(r"[a-z0-9./?=_-]{0,40}", fullmatch=True)


@st.composite
def _mention(draw: st.DrawFn) -> str:
    name = draw(_NAME)
    return (
        f'<span class="h-card" translate="no"><a href="https://mastodon.example/@{name}" class="u-url mention">'
        f"@<span>{name}</span></a></span>"
    )


@st.composite
def _hashtag(draw: st.DrawFn) -> str:
    tag = draw(_NAME)
    return f'<a href="https://mastodon.example/tags/{tag}" class="mention hashtag" rel="tag">#<span>{tag}</span></a>'


@st.composite
def _link(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["https://", "http://www.", "", "https&#58;//"]))
    shown, rest = draw(_URL_PART), draw(_URL_PART)
    ellipsis = draw(st.sampled_from(["ellipsis", "", "ellipsis extra", "x&amp;y"]))
    return (
        f'<a href="{prefix}{shown}{rest}?a=1&amp;b=2" rel="nofollow noopener" target="_blank">'
        f'<span class="invisible">{prefix}</span><span class="{ellipsis}">{shown}</span>'
        f'<span class="invisible">{rest}</span></a>'
    )


_BREAK = st.sampled_from(["<br />", "<br>", "<br/>"])
_FRAGMENT = st.one_of(_TEXT, _mention(), _hashtag(), _link(), _BREAK)


@st.composite
def mastodon_html(draw: st.DrawFn) -> str:
    """Status content shaped like Mastodon's sanitizer output: paragraphs of mentions, tags, links and text."""
    paragraphs = draw(st.lists(st.lists(_FRAGMENT, max_size=8), max_size=5))
    opener = draw(st.sampled_from(["<p>", '<p dir="ltr">', "<p >"]))
    return "".join(f"{opener}{''.join(p)}</p>" for p in paragraphs)


#: Markup Mastodon does not write: the fast path must hand it to the reference parser or read it the same.
_ODD = st.sampled_from(
    [
        "<P>",
        "</P>",
        "<p class='x'>",
        '<span class="invisible" >',
        "<span class=invisible>",
        '<span class="invisible"class="x">',
        "<span>",
        "</span>",
        '<img alt="🙂" src="x">',
        '<img alt="a &amp; b"/>',
        "<ul><li>one</li><li>two</li></ul>",
        "<blockquote>",
        "</blockquote>",
        "<script>alert(1)</script>",
        "<script>a &amp; <b>b</b></script>",
        "<title>&lt;x&gt;</title>",
        '<span class="invisible">',
        '<span class="ellipsis">',
        "<style>p{}</style>",
        "<!-- comment -->",
        "<![CDATA[x]]>",
        "<!doctype html>",
        "<?php ?>",
        "a < b",
        "<3",
        "<",
        ">",
        "</>",
        "</br>",
        "</p/>",
        "<br/ >",
        '<a href="x>y">',
        '<span\nclass="invisible">',
        "<abbr>",
        "</a >",
        "<p/>",
        "<span />",
        "&",
        "\n",
    ]
)


@settings(max_examples=400)
@given(mastodon_html())
def test_fast_path_reads_mastodon_html_like_the_reference_parser(content: str) -> None:
    fast = html_to_text_fast(content)
    assert fast is not None  # Mastodon's own markup never needs the slow parser
    assert fast == html_to_text_reference(content)
    assert html_to_text(content) == fast


@settings(max_examples=1000)
@given(st.lists(st.one_of(_FRAGMENT, _ODD, st.sampled_from(["<p>", "</p>"])), max_size=25))
def test_html_to_text_equals_the_reference_on_tag_soup(tokens: list[str]) -> None:
    content = "".join(tokens)
    fast = html_to_text_fast(content)
    assert fast is None or fast == html_to_text_reference(content)
    assert html_to_text(content) == html_to_text_reference(content)


@given(st.text(max_size=200))
def test_html_to_text_equals_the_reference_on_any_text(content: str) -> None:
    assert html_to_text(content) == html_to_text_reference(content)


@pytest.mark.parametrize(
    "content",
    ["<P>Hi</P>", "<p>a <3 b</p>", "<ul><li>x</li></ul>", '<img alt="y">', "<p>x<!-- c -->y</p>", "<p class='a'>b</p>"],
)
def test_fast_path_leaves_other_markup_to_the_reference_parser(content: str) -> None:
    assert html_to_text_fast(content) is None
    assert html_to_text(content) == html_to_text_reference(content)


@pytest.mark.parametrize(
    "content",
    [
        '<p><span class="invisible">a<span />b</span>c</p>',
        '<p><span class="ellipsis">a<span/>b</span>c</p>',
        "<p/>x<p />y<br/>z",
        "<p>a &amp;amp; &lt;b&gt; &#39;c&#39; AT&T&nbsp;d</p>",
        '<p><span class="x&#32;invisible">hidden</span>shown</p>',
        "<p>one</p >two</p>",
    ],
)
def test_fast_path_reads_these_like_the_reference_parser(content: str) -> None:
    assert html_to_text_fast(content) is not None
    assert html_to_text_fast(content) == html_to_text_reference(content)


def _contents(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [v for k, v in value.items() if k == "content" and isinstance(v, str)]
        return found + [c for k, v in value.items() if k != "content" for c in _contents(v)]
    if isinstance(value, list):
        return [c for v in value for c in _contents(v)]
    return []


def test_fast_path_agrees_on_every_status_in_the_test_data() -> None:
    contents = [c for path in sorted(DATA.rglob("*.json")) for c in _contents(json.loads(path.read_text("utf-8")))]
    assert len(contents) >= 5
    for content in contents:
        assert html_to_text_fast(content) == html_to_text_reference(content), content


def test_fast_path_agrees_on_every_recorded_mastodon_status() -> None:
    folder = shared_fixtures.ROOT / "mastodon"
    names = sorted(p.name for p in folder.glob("*.json")) if folder.is_dir() else ["notifications_mentions_page1.json"]
    contents = [c for name in names for c in _contents(shared_fixtures.recorded("mastodon", name))]
    assert len(contents) >= 10
    for content in contents:
        assert html_to_text(content) == html_to_text_reference(content), content


def test_fast_path_reads_every_status_the_sandbox_renders() -> None:
    with SandboxServer(seed=11, clock=FakeClock(1_780_000_000.0)) as server:
        server.generate(400)
        statuses = _sandbox_statuses(server)
    assert len(statuses) >= 400
    for status in statuses:
        content = status["content"]
        assert html_to_text_fast(content) == html_to_text_reference(content), content


def _sandbox_statuses(server: SandboxServer) -> list[dict[str, Any]]:
    statuses: list[dict[str, Any]] = []
    url: str | None = f"{server.base_url}/api/v1/notifications?limit=80&types[]=mention"
    with httpx.Client(trust_env=False, headers={"Authorization": f"Bearer {server.token}"}) as client:
        while url is not None:
            response = client.get(url)
            page = response.json()
            statuses += [entry["status"] for entry in page]
            url = response.links.get("next", {}).get("url") if page else None
    return statuses
