"""Replies: from a template to the customer, exactly once.

Owns templates and their placeholders (``templates``), the phrase check (``phrases``), length and privacy
checks (``checks``), each account's real limits (``limits``), the outbox (``outbox``: committed before any
network call, never posted twice), our replies as conversation entries (``our_replies``), the composer's
service (``desk``) and the honest-capacity status post (``capacity``).

May import: ``console.channels``, ``console.sync`` (hand-off of manual posts, backoff), ``console.sla``,
``console.model``, ``console.ports``, ``console.wording`` and the storage repositories. Independent of surveys,
accounts and shifts (import-linter keeps it so).
"""
