"""The phrase check: stiff corporate phrases in a reply, each with a friendlier suggestion. It warns, never blocks."""

from __future__ import annotations

import importlib.resources
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["Phrase", "PhraseChecker", "PhraseHit", "load_phrases"]


@dataclass(frozen=True, slots=True)
class Phrase:
    phrase: str
    suggestion: str
    pattern: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class PhraseHit:
    start: int
    end: int
    phrase: str
    suggestion: str

    @property
    def tooltip(self) -> str:
        return f"Sounds stiff: “{self.phrase}”. Try: {self.suggestion}"


def _compile(entry: Mapping[str, object]) -> Phrase:
    phrase = str(entry["phrase"]).strip()
    suggestion = str(entry.get("suggestion", "")).strip()
    raw = entry.get("pattern")
    source = str(raw) if isinstance(raw, str) and raw else r"\s+".join(re.escape(w) for w in phrase.split())
    # Any run of spaces or a line break between words still matches; curly apostrophes match straight ones.
    source = source.replace(" ", r"\s+").replace("'", "['’]")
    return Phrase(phrase, suggestion, re.compile(source, re.IGNORECASE))


def load_phrases() -> list[Phrase]:
    """The shipped list (``resources/phrases.json``).

    Raises:
        ValueError: The file is malformed.
    """
    raw = (importlib.resources.files("resources") / "phrases.json").read_text(encoding="utf-8")
    data = json.loads(raw)
    if not isinstance(data, list):
        raise ValueError("resources/phrases.json must hold a list")
    return [_compile(entry) for entry in data if isinstance(entry, dict) and entry.get("phrase")]


class PhraseChecker:
    """Finds stiff phrases; overlapping matches keep the longest, earliest one."""

    def __init__(self, phrases: Iterable[Phrase] | None = None) -> None:
        self._phrases = list(phrases) if phrases is not None else load_phrases()

    def check(self, text: str) -> list[PhraseHit]:
        """Every stiff phrase in ``text``, in order, without overlaps.

        Args:
            text: The reply being written.

        Returns:
            The hits with their character spans and suggestions.
        """
        hits = [
            PhraseHit(m.start(), m.end(), p.phrase, p.suggestion)
            for p in self._phrases
            for m in p.pattern.finditer(text)
            if m.end() > m.start()
        ]
        hits.sort(key=lambda h: (h.start, -(h.end - h.start)))
        kept: list[PhraseHit] = []
        for hit in hits:
            if not kept or hit.start >= kept[-1].end:
                kept.append(hit)
        return kept
