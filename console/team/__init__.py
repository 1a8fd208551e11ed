"""Team mode (issues 22 and 23): one shared queue on PostgreSQL, every member keeping the local SQLite copy.

Owns replication (push and pull of events), the applier, claims, poller leases, hosting a team server,
hand-over and the supervisor's view. Sits above every feature (it may import replies, surveys, shifts, sync,
sla, channels and reports) and below the runtime; no feature imports it: they expose ports (``SendGate`` in the
outbox, ``PollGate`` in the poller) that this package fills. The design is docs/TEAM.md.
"""
