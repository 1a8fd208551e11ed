"""Reports: what a shift did, in figures a supervisor can trust.

Owns the versioned shift summary computed from the tables and the event log (``summary``), its exports in
JSON, CSV, XLSX, HTML and PDF (``export``), the supervisor's merge of many summaries (``review``) and the same
summary for any period, agents and channels of a team, from the team database's events (``team``).

May import: ``console.sla``, ``console.surveys``, ``console.model``, ``console.ports``, ``console.wording``
and the storage repositories.
"""
