"""Migration 1: the whole schema of DESIGN.md ("Data"), with the FTS5 index over mentions."""

from __future__ import annotations

import sqlite3

from storage.schema import run_script

NUMBER = 1
NAME = "initial schema"


def apply(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE accounts (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            handle TEXT NOT NULL,
            base_url TEXT NOT NULL,
            display_name TEXT NOT NULL DEFAULT '',
            health TEXT NOT NULL DEFAULT 'ok',
            health_reason TEXT NOT NULL DEFAULT '',
            enabled INTEGER NOT NULL DEFAULT 1,
            is_sandbox INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            UNIQUE (kind, base_url, handle)
        );
        CREATE TABLE sync_state (
            account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
            cursor TEXT,
            last_success_at INTEGER,
            next_attempt_at INTEGER,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE customers (
            id INTEGER PRIMARY KEY,
            channel TEXT NOT NULL,
            external_id TEXT NOT NULL,
            handle TEXT NOT NULL,
            display_name TEXT NOT NULL DEFAULT '',
            first_seen_at INTEGER NOT NULL,
            contact_count INTEGER NOT NULL DEFAULT 0,
            last_survey_sent_at INTEGER,
            UNIQUE (channel, external_id)
        );
        CREATE TABLE shifts (
            id INTEGER PRIMARY KEY,
            agent_name TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            ended_at INTEGER,
            notes TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE mentions (
            id INTEGER PRIMARY KEY,
            account_id INTEGER NOT NULL REFERENCES accounts(id),
            external_id TEXT NOT NULL,
            thread_key TEXT NOT NULL,
            head_id INTEGER REFERENCES mentions(id),
            parent_external_id TEXT,
            customer_id INTEGER REFERENCES customers(id),
            author_handle TEXT NOT NULL,
            author_name TEXT NOT NULL DEFAULT '',
            text TEXT NOT NULL,
            url TEXT NOT NULL DEFAULT '',
            posted_at INTEGER NOT NULL,
            fetched_at INTEGER NOT NULL,
            kind TEXT NOT NULL DEFAULT 'public',
            visibility TEXT NOT NULL DEFAULT 'public',
            status TEXT NOT NULL DEFAULT 'new',
            priority INTEGER NOT NULL DEFAULT 2,
            tags TEXT NOT NULL DEFAULT '',
            is_first_contact INTEGER NOT NULL DEFAULT 0,
            shift_id INTEGER REFERENCES shifts(id),
            due_at INTEGER,
            warn_at INTEGER,
            last_message_at INTEGER NOT NULL,
            message_count INTEGER NOT NULL DEFAULT 1,
            raw TEXT,
            UNIQUE (account_id, external_id)
        );
        -- The Open queue: heads only, nearest deadline first; a partial index keeps it an index scan.
        CREATE INDEX mentions_open_due ON mentions (due_at, id)
            WHERE head_id IS NULL AND status IN ('new', 'open');
        CREATE INDEX mentions_due ON mentions (due_at, id) WHERE head_id IS NULL;
        CREATE INDEX mentions_thread ON mentions (account_id, thread_key, posted_at);
        CREATE INDEX mentions_head ON mentions (head_id) WHERE head_id IS NOT NULL;
        CREATE INDEX mentions_customer ON mentions (customer_id);
        CREATE TABLE deadlines (
            id INTEGER PRIMARY KEY,
            mention_id INTEGER NOT NULL REFERENCES mentions(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            due_at INTEGER NOT NULL,
            warn_at INTEGER NOT NULL,
            met_at INTEGER,
            paused_at INTEGER,
            breached_at INTEGER,
            cancelled_at INTEGER,
            note TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX deadlines_mention ON deadlines (mention_id);
        CREATE INDEX deadlines_running ON deadlines (due_at)
            WHERE met_at IS NULL AND cancelled_at IS NULL;
        CREATE TABLE templates (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            body TEXT NOT NULL,
            channel TEXT,
            tags TEXT NOT NULL DEFAULT '',
            use_count INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE TABLE replies (
            id INTEGER PRIMARY KEY,
            mention_id INTEGER NOT NULL REFERENCES mentions(id),
            text TEXT NOT NULL,
            visibility TEXT NOT NULL DEFAULT 'public',
            purpose TEXT NOT NULL DEFAULT 'reply',
            idempotency_key TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL DEFAULT 'draft',
            attempts INTEGER NOT NULL DEFAULT 0,
            external_id TEXT,
            error TEXT NOT NULL DEFAULT '',
            template_id INTEGER REFERENCES templates(id),
            shift_id INTEGER REFERENCES shifts(id),
            created_at INTEGER NOT NULL,
            queued_at INTEGER,
            sent_at INTEGER,
            next_attempt_at INTEGER
        );
        CREATE INDEX replies_mention ON replies (mention_id);
        CREATE INDEX replies_state ON replies (state) WHERE state IN ('queued', 'sending', 'failed');
        CREATE INDEX replies_external ON replies (external_id) WHERE external_id IS NOT NULL;
        CREATE TABLE surveys (
            id INTEGER PRIMARY KEY,
            mention_id INTEGER NOT NULL REFERENCES mentions(id),
            customer_id INTEGER REFERENCES customers(id),
            reply_id INTEGER REFERENCES replies(id),
            sent_at INTEGER,
            question_version TEXT NOT NULL,
            scale_min INTEGER NOT NULL DEFAULT 1,
            scale_max INTEGER NOT NULL DEFAULT 7,
            answer_text TEXT,
            score INTEGER CHECK (score IS NULL OR score BETWEEN 1 AND 7),
            comment TEXT NOT NULL DEFAULT '',
            needs_review INTEGER NOT NULL DEFAULT 0,
            parsed_at INTEGER
        );
        CREATE INDEX surveys_mention ON surveys (mention_id);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            at INTEGER NOT NULL,
            actor TEXT NOT NULL,
            mention_id INTEGER REFERENCES mentions(id),
            kind TEXT NOT NULL,
            data TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX events_mention ON events (mention_id, at);
        CREATE INDEX events_at ON events (at);
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE VIRTUAL TABLE mentions_fts USING fts5(
            text, author_handle, author_name, tags,
            content='mentions', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
        );
        -- No AFTER INSERT trigger: MentionRepo.store_batch indexes each batch with one INSERT ... SELECT,
        -- four times faster than a per-row trigger. Every insert into mentions goes through store_batch.
        CREATE TRIGGER mentions_fts_ad AFTER DELETE ON mentions BEGIN
            INSERT INTO mentions_fts (mentions_fts, rowid, text, author_handle, author_name, tags)
            VALUES ('delete', old.id, old.text, old.author_handle, old.author_name, old.tags);
        END;
        CREATE TRIGGER mentions_fts_au AFTER UPDATE OF text, author_handle, author_name, tags ON mentions
        BEGIN
            INSERT INTO mentions_fts (mentions_fts, rowid, text, author_handle, author_name, tags)
            VALUES ('delete', old.id, old.text, old.author_handle, old.author_name, old.tags);
            INSERT INTO mentions_fts (rowid, text, author_handle, author_name, tags)
            VALUES (new.id, new.text, new.author_handle, new.author_name, new.tags);
        END;
        """,
    )
