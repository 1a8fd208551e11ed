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


#: Team actions on an item, in the words the item's history and the reports' audit list use (issue 23).
TEAM_ACTIONS: dict[str, str] = {
    "claimed": "Claimed to reply",
    "released": "Claim released",
    "claim_broken": "Claim released by a supervisor",
    "reassigned": "Reassigned",
    "handed_over": "Handed over",
    "send_anyway": "Sent anyway",
    "shift_started": "Shift started",
    "shift_ended": "Shift ended",
}


def _anyway_reason(reason: str) -> str:
    """Why a reply was sent anyway, in words (``send_anyway.reason``: "claimed by Sam", "answered by Sam", ...)."""
    word, _, who = reason.partition(" by ")
    if word == "claimed":
        return f"over {who}'s claim" if who else "over a colleague's claim"
    if word == "answered":
        return f"after {who} had answered" if who and who != "?" else "after a colleague had answered"
    if word == "offline":
        return "while offline from the team"
    return ""


def team_action(kind: str, data: dict[str, object]) -> str | None:
    """A team action in plain words, or None when ``kind`` is not one.

    ``"Reassigned to Sam · back from holiday"``, ``"Handed back to the pool · 3 items"``,
    ``"Claim of Alex released by a supervisor"``, ``"Sent anyway over a colleague's claim (needs review)"``.
    The author and time are shown beside it by the caller (the history line, the report's audit row).
    """
    label = TEAM_ACTIONS.get(kind)
    if label is None:
        return None
    note = str(data.get("note") or "").strip()
    if kind == "claim_broken" and data.get("holder"):
        label = f"Claim of {data['holder']} released by a supervisor"
    elif kind == "reassigned":
        to = data.get("to")
        label = f"Reassigned to {to}" if to else "Reassigned to the pool"
    elif kind == "handed_over":
        to = data.get("to")
        label = f"Handed over to {to}" if to else "Handed back to the pool"
        items = data.get("items")
        if isinstance(items, list) and len(items) != 1:
            label += f" · {count(len(items), 'item')}"
    elif kind == "send_anyway":
        given = str(data.get("reason") or "").strip()
        reason = _anyway_reason(given)
        if reason:
            label = f"Sent anyway {reason} (needs review)"
        else:  # the agent's own words from the composer ("Sent while Sam was replying"), or none
            label = "Sent anyway (needs review)" + (f" · {given}" if given and given != "override" else "")
    return f"{label} · {note}" if note else label


def handed_over_by(author: str, note: str) -> str:
    """The mark on an item the receiver got in a hand-over: ``"handed over by Alex · call back at 3"``."""
    note = note.strip()
    return f"handed over by {author} · {note}" if note else f"handed over by {author}"
