"""Sync: bringing customers' messages in, exactly once.

Owns the poller (``inbox``: each account on its own schedule, first-sync backfill to a horizon, backoff,
rate limits), the one store path (``store_worker``: conversion, quarantine, the writer thread), re-reading
quarantined items (``quarantine``), upstream edits and deletions (``upstream``), whole conversations fetched
from the channel (``threads``), channel health (``health``) and the manual intake of posts added by hand
(``manual``).

May import: ``console.channels`` (the connector contract), ``console.sla`` (deadline planning at ingest),
``console.model``, ``console.ports``, ``console.wording`` and the storage repositories. Never replies, surveys,
reports, cli or Qt.
"""
