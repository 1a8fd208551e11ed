"""The sandbox channel: an embedded Mastodon-compatible server with simulated customers, and the headless demo's
agent (``demo_agent``). May import everything below the runtime (its demo agent replies, triages and surveys)."""

from __future__ import annotations

from console.sandbox.server import SandboxServer, run_standalone

__all__ = ["SandboxServer", "run_standalone"]
