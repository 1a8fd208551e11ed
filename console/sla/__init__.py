"""SLA: every deadline of every item, from its event log.

Owns the band arithmetic (``bands``: pure functions of due time, policy and now), policies as data
(``policy``), calendars with business hours and holidays (``calendar``), the engine that replays events into
deadlines and records breaches (``engine``) and the alert rules (``alerts``).

May import: ``console.model``, ``console.ports``, ``console.wording`` and the storage repositories. Nothing
above it: sync, replies, surveys and reports all build on it.
"""
