"""Recorded real API responses from ``../shared/fixtures`` (beside the checkout, never copied into it).

Outside CI a missing folder skips the test with its reason; in CI (``CI=true``) it fails, so a recorded
fixture can never stop being checked without anyone noticing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


def recorded(channel: str, name: str) -> Any:
    """The parsed JSON of ``../shared/fixtures/<channel>/<name>``; skips (fails in CI) when it is absent."""
    folder = ROOT / channel
    if not folder.is_dir():
        reason = f"shared fixtures not present: ../shared/fixtures/{channel}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{reason} (CI=true: the recorded fixtures must be there)")
        pytest.skip(reason)
    return json.loads((folder / name).read_text(encoding="utf-8"))
