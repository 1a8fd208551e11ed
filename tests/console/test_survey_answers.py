"""The Net Easy answer parser: a table of real-looking replies, plus hypothesis junk that must never score."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.surveys.answers import AnswerKind, parse_answer

SCORED = [
    ("2", 2, ""),
    ("@care 2", 2, ""),
    ("@care@brand.example 1", 1, ""),
    ("2/7", 2, ""),
    ("6/7", 6, ""),
    ("2 out of 7", 2, ""),
    ("a 2", 2, ""),
    ("I'd give it a 2, thanks!", 2, "I'd give it, thanks!"),
    ("two", 2, ""),
    ("Two, cheers", 2, "cheers"),
    ("I'd say three", 3, "I'd say"),
    ("very easy", 2, ""),
    ("Extremely easy thank you", 1, "thank you"),
    ("very difficult", 6, ""),
    ("3️⃣", 3, ""),
    ("2⃣ thanks", 2, "thanks"),
    ("easy thanks 1", 1, "easy thanks"),
    ("1 👍", 1, "👍"),
    ("7. still no refund", 7, "still no refund"),
    ("6 - took three tries to get through", 6, "took three tries to get through"),
    ("took 3 days, 2", 2, "took 3 days"),
    ("order #51234 arrived! 1", 1, "order #51234 arrived!"),
    ("very easy 2", 2, "very easy"),
    ("2, thanks for sorting it", 2, "thanks for sorting it"),
]

AMBIGUOUS = [
    ("2 or 3", "more than one number"),
    ("2-3", "more than one number"),
    ("between 2 and 3", "more than one number"),
    ("10", "outside"),
    ("🔟", "outside"),
    ("0", "outside"),
    ("8/10", "another scale"),
    ("nine out of ten", "another scale"),
    ("easy", "words without a number"),
    ("not very easy tbh", "negated"),
    ("wasn't really easy at all", "negated"),
    ("it wasn't easy", "words without a number"),
    ("very easy, 7", "disagree"),
    ("1, extremely difficult", "disagree"),
    # Answers that correct themselves or list several numbers (issue 20, numbers 4): review, never the first.
    ("I said 2 earlier but really 6", "more than one number"),
    ("2, no wait, 6", "more than one number"),
    ("6 (sorry, meant 2)", "more than one number"),
    ("2 and 6", "more than one number"),
    ("1 2 3", "more than one number"),
    ("2, well maybe 4 on a bad day", "more than one number"),
    # Star ratings are another scale (5 = best): review, never a score.
    ("1 star", "star rating"),
    ("5*", "star rating"),
    ("5 stars", "star rating"),
    ("5 Stars, great service", "star rating"),
    ("⭐⭐⭐⭐⭐", "star rating"),
    ("2. Oh and 5 stars for the agent", "star rating"),
]

NONE = [
    "thanks!",
    "lol what",
    "🤷",
    "no one helped me",
    "one question: where is my parcel?",
    "order #51234",
    "I ordered 2 pairs and only 1 arrived",
    "waited 45 minutes on the phone",
    "version 3.12.1 still crashes",
    "£5 refund please",
    "",
    "   ",
]


@pytest.mark.parametrize(("text", "score", "comment"), SCORED)
def test_real_looking_answers_are_scored_with_the_rest_as_comment(text: str, score: int, comment: str) -> None:
    parsed = parse_answer(text)
    assert parsed.kind is AnswerKind.SCORED, parsed
    assert parsed.score == score
    assert parsed.comment == comment


@pytest.mark.parametrize(("text", "reason"), AMBIGUOUS)
def test_unclear_answers_are_flagged_never_guessed(text: str, reason: str) -> None:
    parsed = parse_answer(text)
    assert parsed.kind is AnswerKind.AMBIGUOUS, parsed
    assert parsed.score is None
    assert reason in parsed.reason
    assert parsed.comment  # the whole text is kept for the agent


@pytest.mark.parametrize("text", NONE)
def test_text_without_an_answer_is_not_an_answer(text: str) -> None:
    parsed = parse_answer(text)
    assert parsed.kind is AnswerKind.NONE, parsed
    assert parsed.score is None


def test_the_same_answer_twice_is_one_answer() -> None:
    assert parse_answer("2! yes, a 2").score == 2


def test_an_answer_with_a_new_question_is_split() -> None:
    parsed = parse_answer("2. also, when will the refund show up?")
    assert parsed.kind is AnswerKind.SCORED
    assert parsed.score == 2
    assert parsed.has_question
    assert parsed.comment == "also, when will the refund show up?"
    assert not parse_answer("2 thanks!").has_question


_ANSWER_LIKE = re.compile(
    r"[0-9\u20e3\U0001f51f]|\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten)\b"
    r"|easy|simple|difficult|hard|effortless|painful|impossible|nightmare|neutral|so.so|neither|[\u2b50\u2605\u2606]",
    re.IGNORECASE,
)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=200))
def test_junk_never_crashes_and_scores_only_within_the_scale(text: str) -> None:
    parsed = parse_answer(text)
    assert parsed.kind in set(AnswerKind)
    assert parsed.score is None or 1 <= parsed.score <= 7
    assert (parsed.score is not None) == (parsed.kind is AnswerKind.SCORED)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
            st.sampled_from(["thanks", "order", "#51234", "days", "?", "the one", "no one", "someone", "🙏", "@care"]),
        ),
        max_size=12,
    ).map(" ".join)
)
def test_text_that_holds_no_answer_is_never_scored(text: str) -> None:
    if _ANSWER_LIKE.search(text):
        return  # the property is about text with nothing answer-like in it
    assert parse_answer(text).kind is AnswerKind.NONE


@settings(max_examples=300, deadline=None)
@given(
    score=st.integers(min_value=1, max_value=7),
    before=st.sampled_from(["", "@care ", "hi! ", "I'd say a ", "score: "]),
    after=st.sampled_from(["", " thanks", " 🙏", ", all sorted now", "/7", " - the app was fine"]),
)
def test_a_digit_answer_survives_surrounding_chatter(score: int, before: str, after: str) -> None:
    parsed = parse_answer(f"{before}{score}{after}")
    assert parsed.kind is AnswerKind.SCORED
    assert parsed.score == score
