"""Migration 11: the fatigue guard and answer queries on surveys use indexes, not table scans."""

from __future__ import annotations

import sqlite_utils

from storage.schema import m011_surveys


def _plan(db: sqlite_utils.Database, sql: str, params: tuple[object, ...]) -> str:
    return " ".join(str(row[-1]) for row in db.conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))


def test_migration_11_creates_the_survey_indexes(db: sqlite_utils.Database) -> None:
    names = {row[0] for row in db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"surveys_customer", "surveys_sent", "surveys_reply", "surveys_review"} <= names
    assert m011_surveys.NUMBER == 11
    m011_surveys.apply(db.conn)  # idempotent: IF NOT EXISTS


def test_fatigue_guard_query_searches_by_customer(db: sqlite_utils.Database) -> None:
    plan = _plan(db, "SELECT id FROM surveys WHERE customer_id = ? ORDER BY sent_at DESC, id DESC", (1,))
    assert "surveys_customer" in plan
    assert "SCAN surveys" not in plan


def test_flagged_answers_and_period_queries_use_indexes(db: sqlite_utils.Database) -> None:
    review = _plan(db, "SELECT id FROM surveys WHERE needs_review = 1 ORDER BY parsed_at", ())
    assert "surveys_review" in review
    period = _plan(db, "SELECT id FROM surveys WHERE sent_at >= ? AND sent_at < ?", (0, 10))
    assert "surveys_sent" in period
