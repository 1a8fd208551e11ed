"""The real targets of links in a channel's HTML: Mastodon shows ``example.com/a/very/lo…`` for a longer URL."""

from __future__ import annotations

from html.parser import HTMLParser

__all__ = ["link_targets"]

_SCHEMES = ("http://", "https://")
#: Anchors that are not web links to show (a profile or a tag page): left as plain text.
_SKIPPED_CLASSES = frozenset({"mention", "hashtag"})


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []
        self._spans: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            classes = set(" ".join(v or "" for k, v in attrs if k == "class").split())
            href = next((v for k, v in attrs if k == "href" and v), None)
            ok = href is not None and href.lower().startswith(_SCHEMES) and not classes & _SKIPPED_CLASSES
            self._href = href if ok else None
            self._text = []
        elif tag == "span":
            classes = set(" ".join(v or "" for k, v in attrs if k == "class").split())
            marker = "invisible" if "invisible" in classes else "ellipsis" if "ellipsis" in classes else ""
            self._spans.append(marker)
            self._hidden += marker == "invisible"

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            text = "".join(self._text).strip()
            if self._href is not None and text:
                self.found.append((text, self._href))
            self._href = None
        elif tag == "span" and self._spans:
            marker = self._spans.pop()
            if marker == "invisible":
                self._hidden -= 1
            elif marker == "ellipsis" and self._hidden == 0 and self._href is not None:
                self._text.append("…")

    def handle_data(self, data: str) -> None:
        if self._href is not None and self._hidden == 0:
            self._text.append(data)


def link_targets(html: str) -> list[tuple[str, str]]:
    """``(visible text, real http(s) target)`` of each web link in sanitized status HTML; never raises.

    The visible text is what ``html_to_text`` keeps (invisible spans dropped, "…" after an ellipsis span), so
    the conversation pane can find it in the stored plain text and show the real target on hover.
    """
    parser = _Anchors()
    try:
        parser.feed(html)
        parser.close()
    except AssertionError:  # the stdlib parser asserts on some odd markup: keep what was read
        pass
    return list(dict.fromkeys(parser.found))
