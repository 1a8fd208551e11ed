"""The "was it already posted?" check recognises our reply whatever the customer's handle and the text hold."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from console.channels.mastodon import with_mention
from console.replies.outbox import same_reply_text

#: Format and control characters, whitespace ones (tab, line feed, carriage return...) aside.
_INVISIBLE = regex.compile(r"[\p{Cf}\x00-\x08\x0e-\x1f\x7f-\x9f]")
_HANDLE_PART = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="@"), min_size=1, max_size=16
).filter(lambda part: not any(ch.isspace() for ch in part) and _INVISIBLE.sub("", part) != "")
#: Any handle a server may hand us: "user" or "user@domain", in any script, with accents, "+", controls.
HANDLES = st.tuples(_HANDLE_PART, st.none() | _HANDLE_PART).map(lambda p: p[0] if p[1] is None else f"{p[0]}@{p[1]}")

Render = Callable[[str, str], str]


def _without_domain(posted: str, handle: str) -> str:
    return posted.replace(f"@{handle}", "@" + handle.split("@")[0], 1)


#: What a server (or a hostile one) may do to the text of the status it stores and shows back.
RENDERS: dict[str, Render] = {
    "as sent": lambda posted, _handle: posted,
    "NFC": lambda posted, _handle: unicodedata.normalize("NFC", posted),
    "NFD": lambda posted, _handle: unicodedata.normalize("NFD", posted),
    "controls stripped": lambda posted, _handle: _INVISIBLE.sub("", posted),
    "NFC then controls stripped": lambda posted, _h: _INVISIBLE.sub("", unicodedata.normalize("NFC", posted)),
    "mention without domain": _without_domain,
    "line breaks rendered": lambda posted, _handle: posted.replace("\n", "<br>\n").replace("<br>", ""),
}


@pytest.mark.parametrize(
    "handle",
    ["jose\u0301@shop.example", "\u202eevil@shop.example", "a+b@shop.example", "\u05d3\u05e0\u05d4", "ana\u200d"],
)
def test_reply_is_recognised_whatever_the_handle_holds(handle: str) -> None:
    text = "Sorry for the wait, your refund is on its way."
    for name, render in RENDERS.items():
        assert same_reply_text(render(with_mention(text, handle), handle), text), name


@settings(max_examples=400, deadline=None)
@given(handle=HANDLES, text=st.text(max_size=80), render=st.sampled_from(sorted(RENDERS)))
def test_reply_is_recognised_for_any_unicode_handle_and_text(handle: str, text: str, render: str) -> None:
    posted = RENDERS[render](with_mention(text, handle), handle)
    assert same_reply_text(posted, text)


@settings(max_examples=200, deadline=None)
@given(handle=HANDLES, text=st.text(max_size=80), extra=st.text(st.characters(categories=("L", "N")), min_size=1))
def test_a_different_reply_is_not_taken_for_ours(handle: str, text: str, extra: str) -> None:
    assert not same_reply_text(with_mention(f"{text} {extra}", handle), text)
