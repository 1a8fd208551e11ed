-- Team schema 3: indexes for the shift features of issue #23 (storage/team/supervisor.py).
-- The supervisor view refreshes every second with 50 agents and 100,000 items, so each of its reads is a range of
-- an index, never a scan of the queue.

-- The oldest waiting item of each channel account (a skip scan over account_key, then the first posted_at).
-- The predicate is items_next's, so the planner can use either for "waiting" reads.
CREATE INDEX items_waiting_by_account ON items (account_key, posted_at)
    WHERE NOT answered AND status IN ('new', 'open');

-- Breaches of the hour: items whose due time falls in a range, answered or not.
CREATE INDEX items_due ON items (due_at);

-- What a member holds at the end of a shift: the items handed over or reassigned to them.
CREATE INDEX items_assigned ON items (assigned_to) WHERE assigned_to IS NOT NULL;
