"""Reply templates: placeholders filled from the item, [blanks] the agent must fill, fuzzy search, shipped defaults."""

from __future__ import annotations

import importlib.resources
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from console.ports import Clock
from storage.errors import StorageError
from storage.templates import TemplateRepo, TemplateRow

__all__ = [
    "PLACEHOLDERS",
    "Blank",
    "TemplateService",
    "blanks",
    "combine",
    "fill",
    "first_name",
    "format_due_time",
    "has_blanks",
    "load_defaults",
    "placeholder_values",
    "search",
    "unknown_placeholders",
]

#: Placeholders a template may use, with what fills them.
PLACEHOLDERS: dict[str, str] = {
    "customer_name": "The customer's display name (their handle when they have none)",
    "first_name": "The first word of the customer's display name",
    "handle": "The customer's @handle",
    "agent_name": "Your name (Settings)",
    "channel": "The channel's name (Mastodon, Bluesky, …)",
    "due_time": "When the next deadline or promised follow-up is due (local time)",
}

_PLACEHOLDER_RE = re.compile(r"\{([a-z_]+)\}")
#: A free blank: "[order number]". Links in Markdown style "[x](…)" are not blanks.
_BLANK_RE = re.compile(r"\[([^\[\]\n]{1,80})\](?!\()")


@dataclass(frozen=True, slots=True)
class Blank:
    start: int
    end: int
    label: str


def first_name(display_name: str) -> str:
    """The first word of a display name, without emoji or punctuation around it ("" when there is none)."""
    for word in display_name.split():
        cleaned = re.sub(r"^[^\w]+|[^\w'\-]+$", "", word)
        if cleaned and any(ch.isalpha() for ch in cleaned):
            return cleaned
    return ""


def fill(body: str, values: dict[str, str], *, unknown_as_blanks: bool = False) -> str:
    """Replace ``{placeholder}``s with values; a placeholder without a value becomes a ``[blank]``.

    Args:
        body: The template text.
        values: Placeholder name -> text. Empty values count as missing.
        unknown_as_blanks: Turn ``{words}`` that are no placeholder into ``[blanks]`` too (templates: a typo
            such as ``{frist_name}`` must be filled in by hand, never sent literally; issue 19 #15).

    Returns:
        The text; without ``unknown_as_blanks``, unknown ``{words}`` are left as they are (they may be the
        customer's own braces).
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in PLACEHOLDERS:
            return f"[{name.replace('_', ' ')}]" if unknown_as_blanks else match.group(0)
        value = values.get(name, "").strip()
        return value if value else f"[{name.replace('_', ' ')}]"

    return _PLACEHOLDER_RE.sub(replace, body)


def unknown_placeholders(body: str) -> list[str]:
    """The ``{words}`` in a template body that are no known placeholder, in order, each once."""
    found: list[str] = []
    for match in _PLACEHOLDER_RE.finditer(body):
        name = match.group(1)
        if name not in PLACEHOLDERS and name not in found:
            found.append(name)
    return found


def format_due_time(when: int, tz: tzinfo | None = None) -> str:
    """A promised or due time as the customer reads it in a reply ("14:05", local time)."""
    return datetime.fromtimestamp(when, tz).astimezone(tz).strftime("%H:%M")


def blanks(text: str) -> list[Blank]:
    """Every ``[blank]`` left in the text, in order."""
    return [Blank(m.start(), m.end(), m.group(1)) for m in _BLANK_RE.finditer(text)]


def has_blanks(text: str) -> bool:
    return _BLANK_RE.search(text) is not None


def combine(parts: Iterable[str]) -> str:
    """Join several filled templates into one reply, one paragraph each, skipping empty ones and repeats."""
    seen: list[str] = []
    for part in parts:
        cleaned = part.strip()
        if cleaned and cleaned not in seen:
            seen.append(cleaned)
    return "\n\n".join(seen)


def _subsequence_score(query: str, text: str) -> float:
    """Fuzzy score of ``query`` in ``text`` (both casefolded): 0 when the letters do not appear in order."""
    if not query:
        return 1.0
    index = text.find(query)
    if index >= 0:
        word_start = index == 0 or not text[index - 1].isalnum()
        return 100.0 + (20.0 if word_start else 0.0) - min(index, 50) * 0.1
    pos = 0
    score = 0.0
    run = 0
    for ch in query:
        found = text.find(ch, pos)
        if found < 0:
            return 0.0
        run = run + 1 if found == pos else 0
        score += 1.0 + run * 2.0 + (3.0 if found == 0 or not text[found - 1].isalnum() else 0.0)
        pos = found + 1
    return score


def search(templates: Sequence[TemplateRow], query: str, *, channel: str | None = None) -> list[TemplateRow]:
    """Templates matching ``query``, best first: names weigh more than tags, tags more than bodies.

    Every word of the query must match somewhere (fuzzily: its letters in order). An empty query lists
    every template usable on ``channel``, most used first.

    Args:
        templates: The candidates (e.g. ``TemplateService.all()``).
        query: What the agent typed.
        channel: Only templates for this channel (or for every channel).

    Returns:
        The matching templates, best first.
    """
    words = query.casefold().split()
    scored: list[tuple[float, int, TemplateRow]] = []
    for position, template in enumerate(templates):
        if channel is not None and template.channel not in (None, channel):
            continue
        name = template.name.casefold()
        tags = " ".join(template.tags).casefold()
        body = template.body.casefold()
        total = 0.0
        for word in words:
            best = max(
                _subsequence_score(word, name) * 3.0,
                _subsequence_score(word, tags) * 2.0,
                # Bodies are long: letters-in-order would match almost anything, so only whole substrings count.
                _subsequence_score(word, body) if len(word) > 2 and word in body else 0.0,
            )
            if best <= 0:
                break
            total += best
        else:
            scored.append((total + min(template.use_count, 50) * 0.05, -position, template))
    scored.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [template for _score, _pos, template in scored]


def load_defaults() -> list[dict[str, object]]:
    """The shipped templates (``resources/templates.json``)."""
    raw = (importlib.resources.files("resources") / "templates.json").read_text(encoding="utf-8")
    data = json.loads(raw)
    if not isinstance(data, list):
        raise ValueError("resources/templates.json must hold a list")
    return [entry for entry in data if isinstance(entry, dict)]


class TemplateService:
    """The template library the composer and the manager use; seeds the shipped defaults into an empty library."""

    def __init__(self, repo: TemplateRepo, clock: Clock) -> None:
        self._repo = repo
        self._clock = clock

    def ensure_defaults(self) -> int:
        """Insert the shipped templates when the library is empty (first start). Returns how many."""
        if self._repo.count():
            return 0
        added = 0
        now = int(self._clock.now())
        for entry in load_defaults():
            variants = entry.get("variants")
            self._repo.save(
                name=str(entry["name"]),
                body=str(entry["body"]),
                tags=[str(t) for t in entry.get("tags", []) or []],  # type: ignore[attr-defined]
                variants={str(k): str(v) for k, v in variants.items()} if isinstance(variants, dict) else None,
                now=now,
            )
            added += 1
        return added

    def all(self) -> list[TemplateRow]:
        return self._repo.all()

    def get(self, template_id: int) -> TemplateRow | None:
        return self._repo.get(template_id)

    def search(self, query: str, *, channel: str | None = None) -> list[TemplateRow]:
        return search(self._repo.all(), query, channel=channel)

    def body_for(self, template: TemplateRow, channel: str) -> str:
        """The channel's variant when there is one, else the template's body."""
        return template.variants.get(channel, template.body)

    def render(self, template: TemplateRow, values: dict[str, str], *, channel: str) -> str:
        """The template's text for ``channel`` with the placeholders filled (missing ones become blanks)."""
        return fill(self.body_for(template, channel), values, unknown_as_blanks=True)

    def save(
        self,
        *,
        name: str,
        body: str,
        tags: Sequence[str] = (),
        variants: dict[str, str] | None = None,
        template_id: int | None = None,
    ) -> int:
        """Create or update a template.

        Raises:
            ValueError: The name or text is empty or the name is taken (the message says which).
        """
        try:
            return self._repo.save(
                name=name, body=body, tags=tags, variants=variants, now=int(self._clock.now()), template_id=template_id
            )
        except StorageError as exc:
            raise ValueError(str(exc)) from exc

    def delete(self, template_id: int) -> None:
        self._repo.delete(template_id)

    def record_use(self, template_ids: Sequence[int]) -> None:
        self._repo.record_use(template_ids)


def placeholder_values(
    *,
    customer_name: str,
    handle: str,
    agent_name: str,
    channel: str,
    due_at: int | None,
    tz: tzinfo | None = None,
) -> dict[str, str]:
    """The placeholder values for one item (``due_time`` in local time, e.g. "14:05")."""
    due = "" if due_at is None else format_due_time(due_at, tz)
    name = customer_name.strip() or handle
    return {
        "customer_name": name,
        "first_name": first_name(customer_name) or name,
        "handle": f"@{handle.removeprefix('@')}" if handle else "",
        "agent_name": agent_name.strip(),
        "channel": channel,
        "due_time": due,
    }
