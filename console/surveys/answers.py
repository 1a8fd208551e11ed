"""Reads a Net Easy answer (1 = extremely easy … 7 = extremely difficult) out of a customer's free-text reply."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = ["SCALE_MAX", "SCALE_MIN", "AnswerKind", "ParsedAnswer", "parse_answer"]

SCALE_MIN: Final = 1
SCALE_MAX: Final = 7


class AnswerKind(StrEnum):
    """What a message holds: a score, something the agent must score by hand, or no answer at all."""

    SCORED = "scored"
    AMBIGUOUS = "ambiguous"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class ParsedAnswer:
    """The outcome of parsing one message.

    ``score`` is set only for ``SCORED``. ``comment`` is the text around the answer (the whole text when
    ambiguous). ``reason`` says why an answer was flagged. ``has_question`` is True when the rest of the
    message asks something new, so the conversation must stay open.
    """

    kind: AnswerKind
    score: int | None = None
    comment: str = ""
    reason: str = ""
    has_question: bool = False


_WORDS: Final = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}
_OUT_OF_RANGE_WORDS: Final = {"zero": 0, "eight": 8, "nine": 9, "ten": 10}

# Effort phrases on the 7-point scale; the first match in this order wins (longest first).
_PHRASES: Final[tuple[tuple[str, int], ...]] = (
    (r"(?:extremely|super|incredibly|ridiculously|really really) (?:easy|simple)", 1),
    (r"(?:very|really|so) (?:easy|simple)", 2),
    (r"(?:quite|fairly|pretty|somewhat|reasonably|rather) (?:easy|simple)", 3),
    (r"neither easy nor (?:difficult|hard)|neutral|so-so|so so", 4),
    (r"(?:quite|fairly|pretty|somewhat|rather|a bit|a little) (?:difficult|hard)", 5),
    (r"(?:very|really|so) (?:difficult|hard)", 6),
    (r"(?:extremely|super|incredibly|ridiculously) (?:difficult|hard)", 7),
)
_PHRASE_RE: Final = re.compile(r"\b(" + "|".join(f"(?:{p})" for p, _ in _PHRASES) + r")\b")
_BARE_EFFORT_RE: Final = re.compile(r"\b(easy|simple|difficult|hard|effortless|painful|impossible|nightmare)\b")
_NEGATION_RE: Final = re.compile(r"\b(?:not|n't|never|wasn't|isn't|wasnt|isnt|hardly)\s*(?:\w+\s+){0,2}$")

_KEYCAP_RE: Final = re.compile("([0-9#*])\ufe0f?\u20e3")
_KEYCAP_TEN: Final = "\U0001f51f"
_LEADING_MENTIONS_RE: Final = re.compile(r"^(?:\s*@[\w.\-]+(?:@[\w.\-]+)?)+\s*")

# A number or number word, standalone: not glued to letters, digits, decimal points or currency.
_TOKEN_RE: Final = re.compile(
    r"(?<![\w.,#$€£/:\-+])([0-9]+|zero|one|two|three|four|five|six|seven|eight|nine|ten)(?![\w%€£$]|[.,:][0-9])",
    re.IGNORECASE,
)
# What may follow an answer and makes it a range or an alternative: "2 or 3", "2-3", "2 to 3", "2/3".
_ALTERNATIVE_RE: Final = re.compile(
    r"^\s*(?:or|to|-|–|—|/|or maybe|maybe|possibly)\s*([0-9]+|one|two|three|four|five|six|seven)\b", re.IGNORECASE
)
_OUT_OF_RE: Final = re.compile(r"^\s*(?:/|out of|of)\s*([0-9]+|seven|ten)\b", re.IGNORECASE)
_BETWEEN_RE: Final = re.compile(r"\bbetween\s*$", re.IGNORECASE)
# A star rating ("5 stars", "1 star", "5*", "4⭐"): another scale (usually 5 = best, the opposite of ours).
_STARS_AFTER_RE: Final = re.compile(r"^\s*(?:\*|\u2b50|\u2605|\u2606|stars?\b)", re.IGNORECASE)
_STAR_GLYPHS_RE: Final = re.compile("[\u2b50\u2605\u2606]")
# Words after a number that show it counts something ("3 days", "2 parcels"): not an answer.
_UNITS: Final = frozenset(
    {
        "s",
        "m",
        "h",
        "d",
        "x",
        "am",
        "pm",
        "st",
        "nd",
        "rd",
        "th",
        "min",
        "mins",
        "minute",
        "minutes",
        "hour",
        "hours",
        "hr",
        "hrs",
        "day",
        "days",
        "week",
        "weeks",
        "month",
        "months",
        "year",
        "years",
        "time",
        "times",
        "try",
        "tries",
        "attempt",
        "attempts",
        "call",
        "calls",
        "email",
        "emails",
        "message",
        "messages",
        "item",
        "items",
        "order",
        "orders",
        "pair",
        "pairs",
        "parcel",
        "parcels",
        "package",
        "packages",
        "euro",
        "euros",
        "eur",
        "dollar",
        "dollars",
        "usd",
        "pound",
        "pounds",
        "gbp",
        "percent",
        "people",
        "person",
        "agent",
        "agents",
        "of",
        "more",
        "question",
        "thing",
        "moment",
        "sec",
        "second",
    }
)
# Plural-looking words that may follow an answer ("2 thanks").
_NOT_PLURAL: Final = frozenset(
    {"thanks", "cheers", "yes", "was", "is", "this", "its", "as", "always", "guys", "folks", "bc", "cus", "cuz", "plus"}
)
# Words before a number that make it a reference, not an answer ("order 3", "version 2").
_REFERENCES: Final = frozenset(
    {
        "order",
        "orders",
        "no",
        "nr",
        "number",
        "version",
        "v",
        "step",
        "page",
        "option",
        "item",
        "items",
        "ticket",
        "case",
        "room",
        "flat",
        "apt",
        "apartment",
        "line",
        "size",
        "model",
        "gen",
        "series",
        "chapter",
        "part",
        "phase",
        "level",
        "the",
        "my",
        "your",
        "our",
        "their",
        "every",
        "each",
        "another",
        "any",
        "only",
        "last",
        "next",
        "first",
        "other",
        "some",
        "these",
        "those",
    }
)
_QUESTION_RE: Final = re.compile(r"\?")


def _normalise(text: str) -> str:
    """Keycap emoji to digits (with spaces so they stand alone), leading @mentions off, whitespace folded."""
    text = text.replace(_KEYCAP_TEN, " 10 ")
    text = _KEYCAP_RE.sub(lambda m: f" {m.group(1)} ", text)
    text = _LEADING_MENTIONS_RE.sub("", text)
    return " ".join(text.split())


def _value(token: str) -> int:
    lowered = token.lower()
    if lowered in _WORDS:
        return _WORDS[lowered]
    if lowered in _OUT_OF_RANGE_WORDS:
        return _OUT_OF_RANGE_WORDS[lowered]
    return int(lowered) if len(lowered) <= 4 else 10_000


def _next_word(text: str, end: int) -> str:
    match = re.match(r"\s*([^\W\d]+|%)", text[end:])
    return match.group(1).lower() if match else ""


def _previous_word(text: str, start: int) -> str:
    match = re.search(r"([^\W\d]+)[.:]?\s*$", text[:start])
    return match.group(1).lower() if match else ""


def _counts_something(text: str, start: int, end: int) -> bool:
    """True when the number is a quantity or a reference ("3 days", "order 2"), not an answer."""
    after = _next_word(text, end)
    if after in _UNITS or (len(after) >= 3 and after.endswith("s") and after not in _NOT_PLURAL):
        return True
    return _previous_word(text, start) in _REFERENCES


def _is_word(token: str) -> bool:
    return not token[0].isdigit()


def _opposite(a: int, b: int) -> bool:
    """One says easy (1–3), the other difficult (5–7)."""
    return (a <= 3 and b >= 5) or (a >= 5 and b <= 3)


def _clean_comment(text: str) -> str:
    text = re.sub(r"\s+([,.!?;:])", r"\1", " ".join(text.split()))
    return text.strip(" \t,.;:-–—/()[]").strip()


@dataclass(frozen=True, slots=True)
class _Candidate:
    start: int
    end: int
    value: int


def _answers(text: str, pos: int = 0) -> Iterator[tuple[re.Match[str], int]]:
    """Numbers from ``pos`` on that read as an answer (not a quantity, a reference, a pronoun or a big number)."""
    for match in _TOKEN_RE.finditer(text, pos):
        token = match.group(1)
        start, end = match.span(1)
        if _STARS_AFTER_RE.match(text[end:]):
            yield match, _value(token)  # a star rating: the caller flags it whatever the number
            continue
        if _counts_something(text, start, end):
            continue
        if _is_word(token) and start > 0:
            # Number words double as pronouns ("no one", "the one I ordered"): accept them only where an
            # answer would be, at the start or after words that introduce a rating.
            before = _previous_word(text, start)
            if before not in ("a", "say", "it", "its", "is", "was", "give", "rate", "rating", "score", "solid"):
                continue
        if len(token) > 2 and token.isdigit():
            continue  # three or more digits: an order number, a year, a price
        value = _value(token)
        if value > 10:
            continue  # "45": minutes or a count, never a 1-7 answer
        yield match, value


def _second_answer(text: str, candidate: _Candidate) -> str:
    """Why an answer is unclear because another number follows it ("2, no wait, 6"; "2 and 6"; "1 2 3")."""
    for match, value in _answers(text, candidate.end):
        if _STARS_AFTER_RE.match(text[match.end(1) :]):
            return f"a star rating is another scale ({match.group(1)} stars)"
        if value != candidate.value:
            return f"more than one number ({candidate.value} and {match.group(1)}): a correction or a range"
    return ""


def _numeric(text: str) -> tuple[_Candidate | None, str]:
    """The first number that reads as an answer; or a reason it is unclear (then the candidate is None)."""
    if _STAR_GLYPHS_RE.search(text):
        return None, "a star rating is another scale"
    candidate, reason = _first_number(text)
    if candidate is not None:
        second = _second_answer(text, candidate)
        if second:
            return None, second
    return candidate, reason


def _first_number(text: str) -> tuple[_Candidate | None, str]:
    for match, value in _answers(text):
        token = match.group(1)
        start, end = match.span(1)
        if _STARS_AFTER_RE.match(text[end:]):
            return None, f"a star rating is another scale ({token} stars)"
        rest = text[end:]
        out_of = _OUT_OF_RE.match(rest)
        if out_of is not None:
            denominator = _value(out_of.group(1))
            if denominator != SCALE_MAX:
                return None, f"answered on another scale ({token}/{out_of.group(1)})"
            if not SCALE_MIN <= value <= SCALE_MAX:
                return None, f"{token} is outside 1–7"
            return _Candidate(start, end + out_of.end(), value), ""
        if _ALTERNATIVE_RE.match(rest) or _BETWEEN_RE.search(text[:start]):
            return None, "more than one number"
        if not SCALE_MIN <= value <= SCALE_MAX:
            return None, f"{token} is outside 1–7"
        return _Candidate(start, end, value), ""
    return None, ""


def _phrase(lowered: str) -> tuple[_Candidate | None, str]:
    """The first effort phrase ("very easy"); a negated or bare one ("not easy", "easy") is unclear."""
    match = _PHRASE_RE.search(lowered)
    if match is not None:
        if _NEGATION_RE.search(lowered[: match.start()]):
            return None, f"negated words ({match.group(1)!r})"
        for pattern, value in _PHRASES:
            if re.fullmatch(pattern, match.group(1)):
                return _Candidate(match.start(), match.end(), value), ""
    bare = _BARE_EFFORT_RE.search(lowered)
    if bare is not None:
        return None, f"words without a number ({bare.group(1)!r})"
    return None, ""


def parse_answer(text: str) -> ParsedAnswer:
    """Parse a Net Easy answer out of a reply.

    The answer is a digit 1–7 ("2", "2/7", "a 2"), a number word ("two"), a keycap emoji or an effort phrase
    ("very easy"). Everything else is kept as the comment. Alternatives and ranges ("2 or 3"), answers that
    correct themselves or hold several numbers ("2, no wait, 6", "6 (sorry, meant 2)", "1 2 3"), star
    ratings ("5 stars", "5*": another scale), other scales ("10", "8/10"), negated or bare words ("not
    easy") and words that contradict the number ("very easy, 7": the documented direction mix-up) are
    flagged for review, never guessed. Numbers that count or name something ("3 days", "order 2",
    "#51234") are not answers.

    Args:
        text: The customer's message, as stored (plain text).

    Returns:
        The parsed answer; ``AnswerKind.NONE`` when the text holds nothing that looks like an answer.
    """
    normalised = _normalise(text)
    # Lower-case letter by letter so that indexes stay valid in both strings ("İ".lower() is two characters).
    lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in normalised)
    number, number_reason = _numeric(normalised)
    phrase, phrase_reason = _phrase(lowered)
    has_question = bool(_QUESTION_RE.search(normalised))
    if number is None and number_reason:
        return ParsedAnswer(AnswerKind.AMBIGUOUS, None, normalised, number_reason, has_question)
    chosen = number or phrase
    if chosen is None:
        if phrase_reason:
            return ParsedAnswer(AnswerKind.AMBIGUOUS, None, normalised, phrase_reason, has_question)
        return ParsedAnswer(AnswerKind.NONE, None, normalised, "", has_question)
    if number is not None and phrase is not None and _opposite(number.value, phrase.value):
        words = lowered[phrase.start : phrase.end]
        reason = f"the words and the number disagree ({number.value} vs {words!r})"
        return ParsedAnswer(AnswerKind.AMBIGUOUS, None, normalised, reason, has_question)
    # "a 2" / "I'd give it a 2": the article belongs to the answer, not the comment.
    rest = re.sub(r"(?i)\b(?:a|an)\s*$", "", normalised[: chosen.start]) + " " + normalised[chosen.end :]
    comment = _clean_comment(rest)
    return ParsedAnswer(AnswerKind.SCORED, chosen.value, comment, "", bool(_QUESTION_RE.search(comment)))
