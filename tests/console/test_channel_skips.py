"""channels.base.Skips: what a page parser leaves out, logged and quarantined in the same order."""

from __future__ import annotations

import json
from pathlib import Path

from console.channels.base import Rejected, Skips
from console.channels.x import parse_mentions

DATA = Path(__file__).resolve().parents[1] / "data" / "x"


def test_skip_records_the_entry_for_the_log_and_for_the_quarantine() -> None:
    skips = Skips()
    first, second = {"id": "7"}, ["not", "an", "object"]
    skips.skip("7", "no created_at", first)
    skips.skip("?", "entry is not an object", second)
    assert skips.skipped == [("7", "no created_at"), ("?", "entry is not an object")]
    assert skips.rejected == [
        Rejected("7", "no created_at", first),
        Rejected("?", "entry is not an object", second),
    ]


def test_a_parser_quarantines_each_skipped_entry_with_its_raw_json() -> None:
    payload = json.loads((DATA / "mentions_page.json").read_text())
    page = parse_mentions(payload)
    assert [(r.external_id, r.reason) for r in page.rejected] == page.skipped
    skipped_tweet = next(t for t in payload["data"] if t["id"] == page.skipped[0][0])
    assert page.rejected[0].raw == skipped_tweet
