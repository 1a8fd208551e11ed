"""Replication between the local copy and the team log: push own changes, pull everyone's (docs/TEAM.md).

Push: own shared events and stored messages past the watermarks, in batches of :data:`PUSH_BATCH`, each with a
uid derived from the member and the local id (``console/team/keys.py``), so a retried push sends the same uids
and the server keeps each once; the watermark is saved only after the server committed (at-least-once plus a
unique uid is exactly once).

Pull: ``LISTEN <schema>_events`` and ``<schema>_claims`` on a dedicated connection; a notification (a hint,
never data) makes the replicator read ``since(cursor)``; a safety pull runs every :data:`SAFETY_PULL_S`.
Where notifications cannot work (a transaction-mode pooler: a NOTIFY to ourselves does not come back within
:data:`NOTIFY_PROBE_S`, or ``notify=False``), it polls every :data:`POLL_S` and says so. When the server is
out of reach, local work goes on and the status says "offline" since when and why; on reconnect it pushes and
catches up. :meth:`Replicator.run` never dies.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from console.team.keys import local_event_uid, mention_uid
from storage.team_local import OutgoingEvent, OutgoingMention

#: Own changes sent in one INSERT (one transaction on the server).
PUSH_BATCH = 500
#: Team events read in one page.
PULL_PAGE = 2000
#: With LISTEN working, a pull runs at least this often anyway (a lost notification costs latency, never data).
SAFETY_PULL_S = 30.0
#: Without LISTEN, the log is read this often.
POLL_S = 2.0
#: How long the self-NOTIFY at connect may take before notifications are declared unavailable.
NOTIFY_PROBE_S = 2.0
#: Reconnect backoff: first wait and cap (seconds).
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0

#: Local ids in event data that mean nothing on another machine (their shared names are added instead).
_LOCAL_ID_FIELDS = ("reply_id", "survey_id", "message", "correction_id", "shift_id", "by_message")


@dataclass(frozen=True, slots=True)
class PushEvent:
    """One event on its way to the team log."""

    uid: str
    author: str
    at: int
    kind: str
    item_key: str | None
    data: dict[str, Any] = field(default_factory=dict)


def shift_uid(member_uuid: str, shift_id: int) -> str:
    """The shared name of this member's local shift ``shift_id``."""
    return str(uuid.uuid5(uuid.UUID(member_uuid), f"shift:{shift_id}"))


def push_event(change: OutgoingEvent, *, member: str, member_uuid: str) -> PushEvent:
    """The team event for one own local change: local ids replaced by shared names, authored by the member.

    The local actor (the agent's name, or "sla" for the engine's own records) is kept as ``by`` when it is not
    the member: the server's author is always the member who pushed (row-level security checks it).
    """
    data = dict(change.data)
    shift_id = data.get("shift_id")
    if isinstance(shift_id, int):
        data["shift_uid"] = shift_uid(member_uuid, shift_id)
    for name in _LOCAL_ID_FIELDS:
        data.pop(name, None)
    if change.actor != member:
        data["by"] = change.actor
    return PushEvent(
        local_event_uid(member_uuid, change.event_id), member, change.at, change.kind, change.item_key, data
    )


def push_mention(mention: OutgoingMention, *, member: str) -> PushEvent:
    """The ``mention`` event of a locally stored message: its uid is the same on every machine."""
    return PushEvent(
        mention_uid(mention.item_key), member, int(mention.data["posted_at"]), "mention", mention.item_key,
        dict(mention.data),
    )  # fmt: skip
