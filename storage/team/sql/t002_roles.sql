-- Team schema 2: roles the server enforces (issue #23 item 4; docs/TEAM.md "Roles").
-- Group roles @schema@_agent and @schema@_supervisor (NOLOGIN); each member logs in as its own role, granted one.
-- The owner (the role running the migrations) owns every table and bypasses row-level security; it is registered
-- as a member with role 'owner' so that its own actions carry its name.
--
-- Identity: team_member() is the members.name of session_user, the role that logged in. Inside a SECURITY
-- DEFINER function current_user is the definer, so the login role is what names the caller there and in the
-- policies alike; members always log in as their own role (never SET ROLE).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '@schema@_agent') THEN
        CREATE ROLE "@schema@_agent" NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '@schema@_supervisor') THEN
        CREATE ROLE "@schema@_supervisor" NOLOGIN;
    END IF;
END
$$;

INSERT INTO members (name, pg_role, role) VALUES (current_user, current_user, 'owner')
ON CONFLICT DO NOTHING;

CREATE FUNCTION team_member() RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$ SELECT name FROM members WHERE pg_role = session_user $$;

CREATE FUNCTION team_role() RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$ SELECT role FROM members WHERE pg_role = session_user $$;

-- The caller may act as p_name: itself, or anyone when it is the owner (team init, tests, repairs).
CREATE FUNCTION team_check_acting(p_name text) RETURNS void
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    me members%ROWTYPE;
BEGIN
    SELECT * INTO me FROM members WHERE pg_role = session_user;  -- one read (on every claim and take)
    IF p_name IS DISTINCT FROM me.name AND me.role IS DISTINCT FROM 'owner' THEN
        RAISE EXCEPTION 'a member acts only as itself (% is not %)', coalesce(me.name, session_user), p_name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

-- Claim an item for p_holder: ours (renewed), newly taken (also free or expired), or the colleague's that holds it.
CREATE FUNCTION team_claim(p_item text, p_holder text, p_ttl double precision)
    RETURNS TABLE (r_holder text, r_claimed_at timestamptz, r_expires_at timestamptz, r_now timestamptz,
                   r_taken boolean)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    c claims%ROWTYPE;
    took boolean := false;
BEGIN
    PERFORM set_config('care_console.defer_notify', 'on', true);  -- the caller notifies (t001)
    PERFORM team_check_acting(p_holder);
    PERFORM team_lock_events();
    IF NOT EXISTS (SELECT FROM items WHERE key = p_item) THEN
        RETURN;
    END IF;
    LOOP
        INSERT INTO claims (item_key, holder, expires_at)
        VALUES (p_item, p_holder, clock_timestamp() + make_interval(secs => p_ttl))
        ON CONFLICT (item_key) DO NOTHING
        RETURNING * INTO c;
        IF FOUND THEN
            took := true;
            EXIT;
        END IF;
        SELECT * INTO c FROM claims WHERE item_key = p_item FOR UPDATE;
        IF NOT FOUND THEN
            CONTINUE;
        END IF;
        IF c.holder = p_holder THEN
            UPDATE claims SET expires_at = clock_timestamp() + make_interval(secs => p_ttl)
             WHERE item_key = p_item RETURNING * INTO c;
        ELSIF c.expires_at <= clock_timestamp() THEN
            UPDATE claims SET holder = p_holder, claimed_at = clock_timestamp(),
                              expires_at = clock_timestamp() + make_interval(secs => p_ttl)
             WHERE item_key = p_item RETURNING * INTO c;
            took := true;
        END IF;
        EXIT;
    END LOOP;
    IF took THEN
        INSERT INTO events (uid, author, at, kind, item_key, data)
        VALUES (gen_random_uuid(), p_holder, extract(epoch FROM clock_timestamp())::bigint, 'claimed', p_item,
                jsonb_build_object('holder', p_holder));
    END IF;
    RETURN QUERY SELECT c.holder, c.claimed_at, c.expires_at, clock_timestamp(), took;
END
$$;

-- The most urgent open item nobody holds, claimed for p_holder with a 'claimed' event; NULL when there is none.
-- Concurrent takers skip each other's candidates (SKIP LOCKED) instead of queueing on them.
CREATE FUNCTION team_take_next(p_holder text, p_ttl double precision, p_accounts text[])
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    k text;
    got text;
BEGIN
    PERFORM set_config('care_console.defer_notify', 'on', true);  -- the caller notifies (t001)
    PERFORM team_check_acting(p_holder);
    PERFORM team_lock_events();
    FOR attempt IN 1..50 LOOP
        SELECT i.key INTO k
          FROM items i
         WHERE NOT i.answered AND i.status IN ('new', 'open')
           AND (i.assigned_to IS NULL OR i.assigned_to = p_holder)
           AND (p_accounts IS NULL OR i.account_key = ANY (p_accounts))
           -- Not one whose latest reply is recorded at or after the customer's latest message (a reply_sending
           -- not yet answered): team_record_send would refuse the taker's reply as 'answered'. A filter on the
           -- rows items_next already walks, so the partial index still serves the pick.
           AND (i.last_reply_key IS NULL OR i.last_reply_at IS NULL OR i.last_reply_at < i.posted_at)
           -- NOT IN, not NOT EXISTS: the live claims are hashed once per pick, instead of one index probe per
           -- claimed item the scan passes (1,000 claims ahead: 8 ms a pick against under 2 ms).
           AND i.key NOT IN (SELECT c.item_key FROM claims c WHERE c.expires_at > clock_timestamp())
         ORDER BY i.due_at, i.posted_at
         LIMIT 1
           FOR UPDATE OF i SKIP LOCKED;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
        got := NULL;
        INSERT INTO claims AS c (item_key, holder, expires_at)
        VALUES (k, p_holder, clock_timestamp() + make_interval(secs => p_ttl))
        ON CONFLICT (item_key) DO UPDATE
            SET holder = EXCLUDED.holder, claimed_at = clock_timestamp(), expires_at = EXCLUDED.expires_at
            WHERE c.expires_at <= clock_timestamp()
        RETURNING c.item_key INTO got;
        IF got IS NOT NULL THEN
            INSERT INTO events (uid, author, at, kind, item_key, data)
            VALUES (gen_random_uuid(), p_holder, extract(epoch FROM clock_timestamp())::bigint, 'claimed', got,
                    jsonb_build_object('holder', p_holder));
            RETURN got;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

-- Record that p_member is sending reply p_reply_key on p_item, or say why not: the one check that two members
-- never both answer the same customer. Verdicts: ok | claimed (who) | answered (who, at) | unknown.
CREATE FUNCTION team_record_send(p_item text, p_reply_key text, p_member text, p_text text, p_purpose text,
                                 p_override boolean, p_uid uuid, p_anyway_uid uuid)
    RETURNS TABLE (r_verdict text, r_who text, r_at bigint)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    it items%ROWTYPE;
    other text;
    verdict text := 'ok';
    who text;
    when_at bigint;
    now_s bigint;
BEGIN
    PERFORM team_check_acting(p_member);
    PERFORM team_lock_events();
    SELECT * INTO it FROM items WHERE key = p_item FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown'::text, NULL::text, NULL::bigint;
        RETURN;
    END IF;
    IF it.last_reply_key IS NOT DISTINCT FROM p_reply_key THEN
        -- Already recorded (a retry after a crash): the same answer again.
        RETURN QUERY SELECT 'ok'::text, NULL::text, NULL::bigint;
        RETURN;
    END IF;
    SELECT holder INTO other FROM claims
     WHERE item_key = p_item AND expires_at > clock_timestamp() AND holder <> p_member;
    IF other IS NOT NULL THEN
        verdict := 'claimed';
        who := other;
    ELSIF it.answered OR (it.last_reply_key IS NOT NULL AND it.last_reply_at >= it.posted_at) THEN
        verdict := 'answered';
        who := it.last_reply_by;
        when_at := it.last_reply_at;
    END IF;
    IF verdict <> 'ok' AND NOT p_override THEN
        RETURN QUERY SELECT verdict, who, when_at;
        RETURN;
    END IF;
    now_s := extract(epoch FROM clock_timestamp())::bigint;
    INSERT INTO events (uid, author, at, kind, item_key, data)
    VALUES (p_uid, p_member, now_s, 'reply_sending', p_item,
            jsonb_build_object('reply_key', p_reply_key, 'text', p_text, 'purpose', p_purpose))
    ON CONFLICT (uid) DO NOTHING;
    IF p_override THEN
        INSERT INTO events (uid, author, at, kind, item_key, data)
        VALUES (p_anyway_uid, p_member, now_s, 'send_anyway', p_item,
                jsonb_build_object('reply_key', p_reply_key,
                                   'reason', CASE verdict WHEN 'claimed' THEN 'claimed by ' || who
                                                          WHEN 'answered' THEN 'answered by ' || coalesce(who, '?')
                                                          ELSE 'override' END))
        ON CONFLICT (uid) DO NOTHING;
    END IF;
    RETURN QUERY SELECT 'ok'::text, NULL::text, NULL::bigint;
END
$$;

-- Drop p_holder's claim with a 'released' event; false when it held none.
CREATE FUNCTION team_release(p_item text, p_holder text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM set_config('care_console.defer_notify', 'on', true);  -- the caller notifies (t001)
    PERFORM team_check_acting(p_holder);
    PERFORM team_lock_events();
    DELETE FROM claims WHERE item_key = p_item AND holder = p_holder;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO events (uid, author, at, kind, item_key, data)
    VALUES (gen_random_uuid(), p_holder, extract(epoch FROM clock_timestamp())::bigint, 'released', p_item,
            jsonb_build_object('holder', p_holder));
    RETURN true;
END
$$;

-- A supervisor removes whoever's claim on p_item (a stale one) with a 'claim_broken' event; the former holder, or
-- NULL when there was none.
CREATE FUNCTION team_break_claim(p_item text, p_by text) RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    was text;
BEGIN
    PERFORM team_check_acting(p_by);
    IF team_role() IS DISTINCT FROM 'supervisor' AND team_role() IS DISTINCT FROM 'owner' THEN
        RAISE EXCEPTION 'only a supervisor may release a colleague''s claim'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM team_lock_events();
    DELETE FROM claims WHERE item_key = p_item RETURNING holder INTO was;
    IF was IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO events (uid, author, at, kind, item_key, data)
    VALUES (gen_random_uuid(), p_by, extract(epoch FROM clock_timestamp())::bigint, 'claim_broken', p_item,
            jsonb_build_object('holder', was));
    RETURN was;
END
$$;

-- Take an expired (or free) poller lease for p_holder, or renew its own; false when a colleague holds it.
CREATE FUNCTION team_lease(p_account text, p_holder text, p_ttl double precision) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    got text;
BEGIN
    PERFORM team_check_acting(p_holder);
    INSERT INTO leases AS l (account_key, holder, expires_at)
    VALUES (p_account, p_holder, clock_timestamp() + make_interval(secs => p_ttl))
    ON CONFLICT (account_key) DO UPDATE
        SET holder = EXCLUDED.holder,
            acquired_at = CASE WHEN l.holder = EXCLUDED.holder THEN l.acquired_at ELSE clock_timestamp() END,
            expires_at = EXCLUDED.expires_at
        WHERE l.holder = EXCLUDED.holder OR l.expires_at <= clock_timestamp()
    RETURNING l.holder INTO got;
    RETURN got IS NOT NULL;
END
$$;

REVOKE ALL ON FUNCTION team_member(), team_role(), team_check_acting(text),
    team_claim(text, text, double precision), team_take_next(text, double precision, text[]),
    team_record_send(text, text, text, text, text, boolean, uuid, uuid),
    team_lease(text, text, double precision), team_lock_events(),
    team_release(text, text), team_break_claim(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION team_member(), team_role(), team_check_acting(text),
    team_claim(text, text, double precision), team_take_next(text, double precision, text[]),
    team_record_send(text, text, text, text, text, boolean, uuid, uuid),
    team_lease(text, text, double precision), team_lock_events(),
    team_release(text, text), team_break_claim(text, text) TO "@schema@_agent", "@schema@_supervisor";

GRANT USAGE ON SCHEMA "@schema@" TO "@schema@_agent", "@schema@_supervisor";

-- team_meta, items, accounts: read by all; items change only through the events trigger.
GRANT SELECT ON team_meta, items, accounts TO "@schema@_agent", "@schema@_supervisor";
GRANT INSERT ON accounts TO "@schema@_agent", "@schema@_supervisor";

-- events: append-only for everyone (no UPDATE/DELETE grant); written as oneself; supervisor-only kinds;
-- reply_sending only through team_record_send (which checks claims and earlier replies).
GRANT SELECT, INSERT ON events TO "@schema@_agent", "@schema@_supervisor";
GRANT USAGE ON SEQUENCE events_seq_seq TO "@schema@_agent", "@schema@_supervisor";
ALTER TABLE events ENABLE ROW LEVEL SECURITY;
CREATE POLICY events_read ON events FOR SELECT USING (true);
CREATE POLICY events_append ON events FOR INSERT WITH CHECK (
    author = team_member()
    AND kind <> 'reply_sending'
    AND (kind NOT IN ('reassigned', 'claim_broken') OR team_role() IN ('supervisor', 'owner'))
);

-- claims: everyone reads; a member writes its own rows; a supervisor may also delete anyone's (a stale claim).
GRANT SELECT, INSERT, UPDATE, DELETE ON claims TO "@schema@_agent", "@schema@_supervisor";
ALTER TABLE claims ENABLE ROW LEVEL SECURITY;
CREATE POLICY claims_read ON claims FOR SELECT USING (true);
CREATE POLICY claims_insert ON claims FOR INSERT WITH CHECK (holder = team_member());
CREATE POLICY claims_update ON claims FOR UPDATE USING (holder = team_member()) WITH CHECK (holder = team_member());
CREATE POLICY claims_delete ON claims FOR DELETE
    USING (holder = team_member() OR team_role() IN ('supervisor', 'owner'));

-- leases: everyone reads; take an expired one or renew one's own (team_lease does both in one statement).
GRANT SELECT, INSERT, UPDATE, DELETE ON leases TO "@schema@_agent", "@schema@_supervisor";
ALTER TABLE leases ENABLE ROW LEVEL SECURITY;
CREATE POLICY leases_read ON leases FOR SELECT USING (true);
CREATE POLICY leases_insert ON leases FOR INSERT WITH CHECK (holder = team_member());
CREATE POLICY leases_update ON leases FOR UPDATE
    USING (holder = team_member() OR expires_at <= clock_timestamp()) WITH CHECK (holder = team_member());
CREATE POLICY leases_delete ON leases FOR DELETE USING (holder = team_member());

-- members: everyone reads; a member updates its own heartbeat, shift and uuid; only the owner adds members.
GRANT SELECT ON members TO "@schema@_agent", "@schema@_supervisor";
GRANT UPDATE (last_seen_at, on_shift_since, member_uuid) ON members TO "@schema@_agent", "@schema@_supervisor";
ALTER TABLE members ENABLE ROW LEVEL SECURITY;
CREATE POLICY members_read ON members FOR SELECT USING (true);
CREATE POLICY members_update_self ON members FOR UPDATE
    USING (pg_role = session_user) WITH CHECK (pg_role = session_user);
