"""The sandbox channel: an embedded Mastodon-compatible server with simulated customers."""

from __future__ import annotations

from console.sandbox.server import SandboxServer, run_standalone

__all__ = ["SandboxServer", "run_standalone"]
