-- Team schema 1: the shared tables, the items trigger and the notifications (docs/TEAM.md "PostgreSQL schema").
-- Run by storage/team/migrations.py inside one transaction with search_path set to the team schema only, so
-- every name below lands there; functions keep that search_path (SET search_path FROM CURRENT).

CREATE TABLE team_meta (key text PRIMARY KEY, value text NOT NULL);

CREATE TABLE members (
    name text PRIMARY KEY,
    pg_role text UNIQUE NOT NULL,
    role text NOT NULL CHECK (role IN ('agent', 'supervisor', 'owner')),
    member_uuid uuid UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz,
    on_shift_since timestamptz
);

CREATE TABLE accounts (
    key text PRIMARY KEY,
    kind text NOT NULL,
    base_url text NOT NULL,
    handle text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    is_sandbox boolean NOT NULL DEFAULT false,
    added_by text NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    seq bigserial PRIMARY KEY,
    uid uuid UNIQUE NOT NULL,
    author text NOT NULL,
    at bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind text NOT NULL,
    item_key text,
    data jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX events_item ON events (item_key, seq);
CREATE INDEX events_kind_at ON events (kind, at);

CREATE TABLE items (
    key text PRIMARY KEY,
    account_key text NOT NULL,
    external_id text NOT NULL,
    thread_key text NOT NULL DEFAULT '',
    customer text NOT NULL DEFAULT '',
    posted_at bigint NOT NULL,
    due_at bigint,
    status text NOT NULL DEFAULT 'new',
    priority int NOT NULL DEFAULT 2,
    last_reply_key text,
    last_reply_by text,
    last_reply_at bigint,
    answered boolean NOT NULL DEFAULT false,
    assigned_to text,
    updated_seq bigint NOT NULL DEFAULT 0
);
CREATE INDEX items_next ON items (due_at, posted_at) WHERE NOT answered AND status IN ('new', 'open');

CREATE TABLE claims (
    item_key text PRIMARY KEY REFERENCES items(key),
    holder text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX claims_holder ON claims (holder);

CREATE TABLE leases (
    account_key text PRIMARY KEY,
    holder text NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at timestamptz NOT NULL
);

-- The events lock, so that a reader's "seq > cursor" never skips an event that commits late. Writers (every
-- transaction inserting events) hold it SHARED from before their first sequence number to their commit: they never
-- wait for each other, and their commits share disk flushes. A reader (team_events_since) whose range has a gap
-- takes it EXCLUSIVE for its one query: it waits until every writer that holds a number has committed or rolled
-- back, and its snapshot then holds every event below the highest it sees. Transactions that also lock items or
-- claims take it FIRST (team_lock_events()), so that no one holding those rows waits for it behind a queued reader.
CREATE FUNCTION team_lock_events() RETURNS void
    LANGUAGE sql VOLATILE
    SET search_path FROM CURRENT
AS $$ SELECT pg_advisory_xact_lock_shared('events'::regclass::oid::bigint) $$;

CREATE FUNCTION team_events_since(p_seq bigint, p_limit int)
    RETURNS TABLE (seq bigint, uid uuid, author text, at bigint, kind text, item_key text, data jsonb)
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
DECLARE
    n bigint;
    lo bigint;
    hi bigint;
BEGIN
    SELECT count(*), min(x.s), max(x.s) INTO n, lo, hi
      FROM (SELECT e.seq AS s FROM events e WHERE e.seq > p_seq ORDER BY e.seq LIMIT p_limit) x;
    IF n = 0 THEN
        RETURN;  -- nothing new committed (a writer still in flight notifies when it commits)
    END IF;
    IF lo = p_seq + 1 AND hi - lo + 1 = n THEN
        -- Every number after the cursor up to hi is a committed event: none can still be in flight there, so no
        -- need for the lock (the usual case; a gap, from a skipped duplicate or a rollback, takes the lock once).
        RETURN QUERY
            SELECT e.seq, e.uid, e.author, e.at, e.kind, e.item_key, e.data
              FROM events e WHERE e.seq > p_seq AND e.seq <= hi ORDER BY e.seq;
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock('events'::regclass::oid::bigint);
    RETURN QUERY
        SELECT e.seq, e.uid, e.author, e.at, e.kind, e.item_key, e.data
          FROM events e WHERE e.seq > p_seq ORDER BY e.seq LIMIT p_limit;
END
$$;

CREATE FUNCTION team_events_lock_trigger() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM team_lock_events();
    RETURN NULL;
END
$$;

CREATE TRIGGER events_lock BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION team_events_lock_trigger();

-- The shared queue follows the log (docs/TEAM.md "Event kinds", column "items trigger").
CREATE FUNCTION team_items_from_event() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    d jsonb := NEW.data;
    posted bigint;
    reply_at bigint;
    head text;
BEGIN
    CASE NEW.kind
    WHEN 'mention' THEN
        posted := (d->>'posted_at')::numeric::bigint;
        IF NEW.item_key IS NULL OR posted IS NULL THEN
            RETURN NULL;
        END IF;
        IF d->>'head_external_id' IS NULL OR d->>'head_external_id' = d->>'external_id' THEN
            INSERT INTO items AS i (key, account_key, external_id, thread_key, customer, posted_at, due_at,
                                    updated_seq)
            VALUES (NEW.item_key,
                    coalesce(d->>'account_key', split_part(NEW.item_key, '#', 1)),
                    coalesce(d->>'external_id', ''),
                    coalesce(d->>'thread_key', ''),
                    CASE WHEN d->>'author_id' IS NULL THEN ''
                         ELSE split_part(coalesce(d->>'account_key', NEW.item_key), ':', 1) || ':' || (d->>'author_id')
                    END,
                    posted, posted + 1800, NEW.seq)
            ON CONFLICT (key) DO NOTHING;
        ELSE
            -- A follow-up: the head waits again for a reply newer than the customer's latest message.
            head := coalesce(d->>'account_key', split_part(NEW.item_key, '#', 1)) || '#' || (d->>'head_external_id');
            UPDATE items AS i
               SET posted_at = greatest(i.posted_at, posted),
                   due_at = CASE WHEN i.answered AND posted > coalesce(i.last_reply_at, 0) THEN posted + 1800
                                 ELSE i.due_at END,
                   answered = i.answered AND posted <= coalesce(i.last_reply_at, 0),
                   updated_seq = NEW.seq
             WHERE i.key = head;
        END IF;
    WHEN 'status_changed' THEN
        UPDATE items SET status = d->>'to', updated_seq = NEW.seq WHERE key = NEW.item_key AND d->>'to' IS NOT NULL;
    WHEN 'priority_changed' THEN
        UPDATE items SET priority = (d->>'to')::numeric::int, updated_seq = NEW.seq
         WHERE key = NEW.item_key AND d->>'to' IS NOT NULL;
    WHEN 'reply_sending' THEN
        UPDATE items SET last_reply_key = d->>'reply_key', last_reply_by = NEW.author, last_reply_at = NEW.at,
                         updated_seq = NEW.seq
         WHERE key = NEW.item_key;
    WHEN 'reply_sent', 'reply_seen' THEN
        reply_at := coalesce((d->>'posted_at')::numeric::bigint, NEW.at);
        UPDATE items AS i
           SET answered = i.answered OR reply_at >= i.posted_at,
               last_reply_key = CASE WHEN reply_at >= coalesce(i.last_reply_at, 0)
                                     THEN coalesce(d->>'reply_key', 'seen:' || coalesce(d->>'external_id', NEW.uid::text))
                                     ELSE i.last_reply_key END,
               last_reply_by = CASE WHEN reply_at >= coalesce(i.last_reply_at, 0) THEN NEW.author
                                    ELSE i.last_reply_by END,
               last_reply_at = greatest(i.last_reply_at, reply_at),
               updated_seq = NEW.seq
         WHERE i.key = NEW.item_key;
    WHEN 'reassigned' THEN
        UPDATE items SET assigned_to = d->>'to', updated_seq = NEW.seq WHERE key = NEW.item_key;
    WHEN 'handed_over' THEN
        UPDATE items SET assigned_to = d->>'to', updated_seq = NEW.seq
         WHERE key IN (SELECT jsonb_array_elements_text(coalesce(d->'items', '[]'::jsonb)));
    ELSE
        NULL;
    END CASE;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_items AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION team_items_from_event();

-- Notifications, and why some are sent apart from the change they announce: a transaction that notifies holds a
-- database-wide lock from its commit's start to its end, disk flush included, so notifying writers commit one at a
-- time. The hot paths (claim, take next, release; storage/team/claims.py) set care_console.defer_notify for their
-- transaction and send the hints right after it with team_notify_changes(), a transaction that writes nothing and
-- so need not wait for the disk. Everything else notifies from the triggers below.
CREATE FUNCTION team_notify_deferred() RETURNS boolean
    LANGUAGE sql STABLE
AS $$ SELECT coalesce(current_setting('care_console.defer_notify', true), '') = 'on' $$;

-- p_apart: called in a transaction of its own, which writes nothing durable (so its commit skips the disk flush);
-- false inside a caller's transaction, whose commit must stay durable.
CREATE FUNCTION team_notify_changes(p_item text, p_apart boolean) RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
DECLARE
    top bigint;
BEGIN
    IF p_apart THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    SELECT max(seq) INTO top FROM events;
    PERFORM pg_notify(current_schema() || '_events', coalesce(top, 0)::text);
    PERFORM pg_notify(current_schema() || '_claims', coalesce(p_item, ''));
END
$$;

-- One notification per inserting statement (a 500-event batch is one hint), carrying the highest new seq.
CREATE FUNCTION team_notify_events() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    top bigint;
BEGIN
    SELECT max(seq) INTO top FROM new_events;
    IF top IS NOT NULL AND NOT team_notify_deferred() THEN
        PERFORM pg_notify(TG_TABLE_SCHEMA || '_events', top::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_notify AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION team_notify_events();

CREATE FUNCTION team_notify_claims() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
BEGIN
    IF team_notify_deferred() THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_claims',
                      CASE WHEN TG_OP = 'DELETE' THEN OLD.item_key ELSE NEW.item_key END);
    RETURN NULL;
END
$$;

CREATE TRIGGER claims_notify AFTER INSERT OR UPDATE OR DELETE ON claims
    FOR EACH ROW EXECUTE FUNCTION team_notify_claims();
