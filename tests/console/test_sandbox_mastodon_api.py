"""The sandbox as a standard Mastodon server: the same character counter as the client, and a standard client's
login and basic flows (Mastodon.py over a real loopback socket)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.channels.mastodon import reply_length
from console.sandbox.server import countable_length


@pytest.mark.parametrize(
    "text",
    [
        unicodedata.normalize("NFD", "한국어 고객 지원"),  # decomposed Hangul: jamo sequences, one syllable each
        "क्षत्रिय स्त्री",  # Devanagari conjuncts (virama joins consonants)
        "நன்றி",  # Tamil
        "👩\u200d👩\u200d👧 👍🏽 🇩🇪",  # ZWJ family, skin tone, flag
        "e\u0301te\u0301",
    ],
)
def test_sandbox_counts_characters_like_the_client(text: str) -> None:
    assert countable_length(text) == reply_length(text, characters_reserved_per_url=23)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(exclude_characters="@:/.\r\x00"), max_size=60))
def test_sandbox_and_client_never_disagree_on_plain_text(text: str) -> None:
    assert countable_length(text) == reply_length(text, characters_reserved_per_url=23)
