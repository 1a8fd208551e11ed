"""Checks on a reply before it leaves: each channel's own length counting and personal data in public replies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from console.channels.http import grapheme_count
from console.channels.mastodon import DEFAULT_CHARACTERS_RESERVED_PER_URL as DEFAULT_URL_LENGTH
from console.channels.mastodon import DEFAULT_MAX_CHARACTERS, reply_length, with_mention
from console.channels.x import weighted_length as x_weighted_length

__all__ = [
    "LIMITS",
    "LengthCheck",
    "PrivacyFinding",
    "PrivacyKind",
    "bluesky_length",
    "check_length",
    "find_private_data",
    "is_public",
    "length_rule",
    "x_weighted_length",
]

#: Each channel's reply limit in its own unit (channels.md: Mastodon §1, Bluesky §2, X §3, Messenger §6).
#: Also Bluesky chat messages (1,000 graphemes), YouTube comments (about 10,000) and Discourse's default
#: ``max_post_length`` (32,000).
LIMITS: dict[str, int] = {
    "mastodon": DEFAULT_MAX_CHARACTERS,
    "x": 280,
    "bluesky": 300,
    "bluesky_dm": 1000,
    "messenger": 2000,
    "youtube": 10_000,
    "discourse": 32_000,
}
#: Channels whose replies carry the customer's @handle in the text.
_HANDLE_CHANNELS = frozenset({"mastodon", "x", "bluesky"})
#: The limit of a channel that has none (a post added by hand: the agent pastes the reply wherever it goes).
NO_LIMIT = 1_000_000
_UNITS = {"x": "weighted characters", "bluesky": "graphemes", "bluesky_dm": "graphemes"}
_NAMES = {"x": "X", "bluesky_dm": "a Bluesky chat message", "youtube": "YouTube"}

_URL_RE = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?)]}'\""


@dataclass(frozen=True, slots=True)
class LengthCheck:
    channel: str
    count: int
    limit: int
    unit: str

    @property
    def over(self) -> bool:
        return self.count > self.limit

    @property
    def remaining(self) -> int:
        return self.limit - self.count

    @property
    def bounded(self) -> bool:
        """Whether the channel has a real limit (a post added by hand has none worth showing)."""
        return self.limit < NO_LIMIT

    @property
    def reason(self) -> str:
        """Why sending is blocked ("" when it is not)."""
        if not self.over:
            return ""
        name = _NAMES.get(self.channel, self.channel.capitalize())
        return (
            f"Too long for {name}: {self.count:,} of {self.limit:,} {self.unit} "
            f"({self.count - self.limit:,} over). Shorten it or split it into two replies."
        )


def _urls(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _URL_RE.finditer(text):
        url = match.group(0).rstrip(_URL_TRAILING)
        if url.partition("://")[2]:
            spans.append((match.start(), match.start() + len(url)))
    return spans


def bluesky_length(text: str) -> int:
    """Bluesky's post length: extended grapheme clusters (lexicon ``maxGraphemes: 300``)."""
    return grapheme_count(text)


def length_rule(channel: str, *, direct: bool) -> str:
    """Which counting applies to a reply: an account's channel, or its private-message variant.

    Args:
        channel: The account's channel kind ("facebook" covers Messenger).
        direct: The reply is a direct message.

    Returns:
        A key of :data:`LIMITS` (or the channel itself when it has no known limit).
    """
    if channel == "facebook" and direct:
        return "messenger"
    if channel == "bluesky" and direct:
        return "bluesky_dm"
    return channel


def check_length(
    channel: str, text: str, *, handle: str = "", limit: int | None = None, url_length: int | None = None
) -> LengthCheck:
    """Count a reply the way its channel does, with the customer's @handle included where the reply carries it.

    Args:
        channel: "mastodon", "x", "bluesky" or "messenger" (others are counted in code points, no limit).
        text: The reply text.
        handle: The customer's handle (added as "@handle " when missing, as the connector will).
        limit: Override the channel's default (a Mastodon instance's ``max_characters``).
        url_length: What a link counts on Mastodon (the instance's ``characters_reserved_per_url``; default 23).

    Returns:
        The count and the limit.
    """
    if channel in _HANDLE_CHANNELS and handle:
        text = with_mention(text, handle)
    if channel == "mastodon":
        count = reply_length(
            text, characters_reserved_per_url=url_length if url_length is not None else DEFAULT_URL_LENGTH
        )
    elif channel == "x":
        count = x_weighted_length(text)
    elif channel in ("bluesky", "bluesky_dm"):
        count = bluesky_length(text)
    else:
        count = len(text)
    chosen = limit if limit is not None else LIMITS.get(channel, NO_LIMIT)
    return LengthCheck(channel, count, chosen, _UNITS.get(channel, "characters"))


class PrivacyKind(StrEnum):
    EMAIL = "email address"
    PHONE = "phone number"
    ORDER = "order number"


@dataclass(frozen=True, slots=True)
class PrivacyFinding:
    kind: PrivacyKind
    start: int
    end: int
    text: str


_EMAIL_RE = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[a-z]{2,}", re.IGNORECASE)
_PHONE_RE = re.compile(r"(?<![\w/.])\+?\(?\d[\d\s().\-]{5,}\d(?![\w/])")
_ORDER_RES = (
    re.compile(r"\border\s*(?:no\.?|number|num|nr|id|ref(?:erence)?)?\s*[:#]?\s*([A-Z0-9][A-Z0-9\-]{3,})\b", re.I),
    re.compile(r"#\d{5,}\b"),
    re.compile(r"\b[A-Z]{2,4}-\d{4,}\b"),
)


def find_private_data(text: str) -> list[PrivacyFinding]:
    """Email addresses, phone numbers and order numbers in a reply (for the public-reply confirmation).

    Args:
        text: The reply text.

    Returns:
        The findings in order; URLs and @mentions are not mistaken for them.
    """
    findings: list[PrivacyFinding] = []
    taken: list[tuple[int, int]] = list(_urls(text))

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    for match in _EMAIL_RE.finditer(text):
        if free(match.start(), match.end()) and (match.start() == 0 or text[match.start() - 1] != "@"):
            findings.append(PrivacyFinding(PrivacyKind.EMAIL, match.start(), match.end(), match.group(0)))
            taken.append((match.start(), match.end()))
    for pattern in _ORDER_RES:
        for match in pattern.finditer(text):
            value = match.group(0)
            if not any(ch.isdigit() for ch in value) or not free(match.start(), match.end()):
                continue
            findings.append(PrivacyFinding(PrivacyKind.ORDER, match.start(), match.end(), value))
            taken.append((match.start(), match.end()))
    for match in _PHONE_RE.finditer(text):
        digits = sum(ch.isdigit() for ch in match.group(0))
        if 7 <= digits <= 15 and free(match.start(), match.end()):
            findings.append(PrivacyFinding(PrivacyKind.PHONE, match.start(), match.end(), match.group(0).strip()))
            taken.append((match.start(), match.end()))
    findings.sort(key=lambda f: f.start)
    return findings


def is_public(visibility: str) -> bool:
    """Anything but a direct message can be read by people other than the customer."""
    return visibility != "direct"
