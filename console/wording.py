"""Counted nouns in the app's sentences: "1 reply", "2 replies", "1,204 items" (never "1 replies")."""

from __future__ import annotations

#: Plurals that are not the singular plus "s".
_IRREGULAR: dict[str, str] = {
    "reply": "replies",
    "summary": "summaries",
    "survey": "surveys",
    "entry": "entries",
    "policy": "policies",
    "person": "people",
}


def plural(noun: str) -> str:
    """The plural of an English ``noun`` as the app uses it ("reply" -> "replies", "breach" -> "breaches")."""
    if noun in _IRREGULAR:
        return _IRREGULAR[noun]
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return noun[:-1] + "ies"
    return noun + "s"


def count(n: int, noun: str, plural_form: str | None = None) -> str:
    """``n`` with its noun in the right number, thousands separated: ``count(1, "reply")`` is "1 reply".

    Args:
        n: how many.
        noun: the singular; only the last word is inflected ("reply sent" is not supported: pass the noun only).
        plural_form: the plural when it is not regular.

    Returns:
        "1 reply", "0 replies", "1,204 replies".
    """
    word = noun if n == 1 else (plural_form or plural(noun))
    return f"{n:,} {word}"
