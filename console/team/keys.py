"""Names that are the same on every member's machine (docs/TEAM.md "Identity across machines").

Local SQLite ids differ per copy, so everything shared is named by natural keys: an account by its kind, base
URL and handle, an item by its account and the channel's id of the message, an event by a uuid. A local
event's uid is derived from the member and the local event id, so a push retried after a crash sends the very
same uid (the server keeps it once); a mention's content event is derived from the item key alone, so two
members that both fetched it push it once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

#: The namespace of every uuid5 Care Console derives for team mode (fixed forever: changing it renames
#: every shared mention).
NAMESPACE = uuid.UUID("5b0c7f0e-3a55-4d4c-9a51-0d0c7e2a4c11")


@dataclass(frozen=True, slots=True)
class AccountKey:
    """An account key read back into its parts."""

    kind: str
    base_url: str
    handle: str


def normal_base_url(base_url: str) -> str:
    """The base URL as keys spell it: without trailing slashes."""
    return base_url.rstrip("/")


def normal_handle(handle: str) -> str:
    """The handle as keys spell it: without a leading ``@``."""
    return handle.lstrip("@")


def account_key(kind: str, base_url: str, handle: str) -> str:
    """``kind:base_url:handle``, base URL without trailing slash, handle without ``@``."""
    return f"{kind}:{normal_base_url(base_url)}:{normal_handle(handle)}"


def parse_account_key(key: str) -> AccountKey:
    """The parts of an :func:`account_key` (the kind has no colon, a handle none either; the URL may).

    Raises:
        ValueError: ``key`` is not an account key.
    """
    kind, sep, rest = key.partition(":")
    base_url, sep2, handle = rest.rpartition(":")
    if not (sep and sep2 and kind and base_url and handle):
        raise ValueError(f"not an account key: {key!r}")
    return AccountKey(kind, base_url, handle)


def item_key(account: str, external_id: str) -> str:
    """``account_key#external_id``: one message of one account, the same on every machine."""
    return f"{account}#{external_id}"


def split_item_key(key: str) -> tuple[str, str]:
    """(account key, external id) of an :func:`item_key` (the external id never holds ``#``; a URL may).

    Raises:
        ValueError: ``key`` is not an item key.
    """
    account, sep, external_id = key.rpartition("#")
    if not sep or not account or not external_id:
        raise ValueError(f"not an item key: {key!r}")
    return account, external_id


def local_event_uid(member_uuid: str | uuid.UUID, event_id: int) -> str:
    """The team uid of this member's local event ``event_id``: stable across crashes and retries."""
    member = member_uuid if isinstance(member_uuid, uuid.UUID) else uuid.UUID(member_uuid)
    return str(uuid.uuid5(member, f"event:{event_id}"))


def mention_uid(key: str) -> str:
    """The uid of the ``mention`` event of item ``key``: the same on every machine, so it is pushed once."""
    return str(uuid.uuid5(NAMESPACE, f"mention:{key}"))
