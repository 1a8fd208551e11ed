"""Reports: what a shift did, in figures a supervisor can trust.

Owns the versioned shift summary computed from the tables and the event log (``summary``), its exports in
JSON, CSV, XLSX, HTML and PDF (``export``) and the supervisor's merge of many summaries (``review``).

May import: ``console.sla``, ``console.surveys``, ``console.model``, ``console.ports``, ``console.wording``
and the storage repositories.
"""
