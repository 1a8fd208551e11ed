"""The team database: PostgreSQL through psycopg 3 (async) and psycopg_pool; the only package importing psycopg.

Schema, migrations, roles and row-level security in ``sql/``; one repository per concern. See docs/TEAM.md.
"""
