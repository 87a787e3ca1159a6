-- Storage v2: progress by snapshot batch instead of a delete per published row, retention by
-- whole partitions, an audit trail of batches (docs/architecture.md, "Storage").
--
-- outbox_event is partitioned by the writer's transaction id (tx). A relay range publishes
-- in batches: a batch is every event of the range whose transaction became visible between
-- two snapshots, the range's `done_snapshot` and a newer `batch_snapshot`, in sequence
-- order. Published rows are not touched; one fenced progress row per range records how far
-- the range got. A partition whose whole tx span is visible in every range's done snapshot
-- holds only published events; it is truncated (and dropped) once the retention passed.

ALTER TABLE outbox_event RENAME TO outbox_event_v1;
ALTER INDEX outbox_event_pkey RENAME TO outbox_event_v1_pkey;

CREATE TABLE outbox_event (
    slot        integer     NOT NULL,
    seq         bigint      NOT NULL,
    key         text        NOT NULL,
    topic       text        NOT NULL,
    event_type  text        NOT NULL,
    payload     bytea       NOT NULL,
    headers     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    event_id    uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- the writer's top-level transaction: a row belongs to the batch in which it became visible.
    tx          xid8        NOT NULL DEFAULT pg_current_xact_id()
) PARTITION BY RANGE (tx);

-- The relay's batch read: a tx window, filtered by slot inside the index.
CREATE INDEX outbox_event_batch ON outbox_event (tx, slot);
-- Paging through a large batch by key, replay and audit by sequence number. Unique (seq
-- comes from a sequence; tx is here because a partitioned table's unique index must hold
-- its partition key) so that the planner knows a (seq, tx) probe finds one row even on a
-- fresh partition without statistics: with a plain (seq) index its generic plan ANDed
-- each probe with a scan of the page's whole tx window (72 ms a page instead of 5).
CREATE UNIQUE INDEX outbox_event_seq ON outbox_event (seq, tx);

-- Catches any transaction id no partition covers yet (relays down for long, a burst):
-- writers never fail for want of a partition. Normally empty.
CREATE TABLE outbox_event_default PARTITION OF outbox_event DEFAULT;

-- The partitions the maintenance created, with what it needs to size and retire them.
CREATE TABLE outbox_partition (
    name         text        PRIMARY KEY,
    lo           xid8        NOT NULL,
    hi           xid8        NOT NULL,
    -- the snapshot xmax and time when it was created: the next span follows the xid rate.
    created_xmax xid8        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- when every range had passed hi: from then on it holds only published events.
    sealed_at    timestamptz,
    truncated_at timestamptz
);

-- The first partition covers everything up to some headroom above the current xid; the
-- relay's maintenance adds the next ones ahead of time.
DO $$
DECLARE
    v_xmax xid8 := pg_snapshot_xmax(pg_current_snapshot());
    v_hi   xid8 := (v_xmax::text::numeric + 4096)::text::xid8;
    v_name text := 'outbox_event_p' || v_hi::text;
BEGIN
    EXECUTE format('CREATE TABLE %I PARTITION OF outbox_event FOR VALUES FROM (%L) TO (%L)', v_name, '0', v_hi);
    INSERT INTO outbox_partition (name, lo, hi, created_xmax) VALUES (v_name, '0', v_hi, v_xmax);
END $$;

-- Pending rows of the old layout become the first batch of every range.
INSERT INTO outbox_event (slot, seq, key, topic, event_type, payload, headers, event_id, created_at)
SELECT slot, seq, key, topic, event_type, payload, headers, event_id, created_at FROM outbox_event_v1;
DROP TABLE outbox_event_v1;

-- Progress: one row per lease range. Everything visible in done_snapshot is published (or
-- parked). While a batch is open, its events with seq <= batch_seq are published too.
-- Written only with the range's current lease epoch (see the relay's store::progress).
CREATE TABLE outbox_progress_v2 (
    range_start     integer     NOT NULL,
    range_end       integer     NOT NULL,
    done_snapshot   pg_snapshot NOT NULL DEFAULT '1:1:',
    batch_snapshot  pg_snapshot,
    batch_seq       bigint      NOT NULL DEFAULT 0,
    -- Events (published or parked) of the completed batches, and of the open batch so
    -- far: the engine producer numbers events from them (effectively-once, see
    -- adapters/src/pulsar/engine), so the same event always gets the same id.
    events_done     bigint      NOT NULL DEFAULT 0,
    batch_done      bigint      NOT NULL DEFAULT 0,
    published_total bigint      NOT NULL DEFAULT 0,
    parked_total    bigint      NOT NULL DEFAULT 0,
    epoch           bigint,
    relay_id        text,
    -- After a re-cut: the positions of the old ranges this one was cut from, as
    -- [{lo, hi, done, batch, batch_seq}], until this range completes its first batch. An
    -- event they had published is not published again (outbox_carried_done).
    carried         jsonb,
    -- Whether the broker deduplicates each topic the range publishes to, as the owning
    -- relay learned it from the admin API: {"persistent://t/n/topic": "on" | "off" |
    -- "unknown (reason)"}. Shown by `status`; informational, not fenced.
    deduplication   jsonb,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (range_start, range_end)
);
INSERT INTO outbox_progress_v2 (range_start, range_end)
SELECT range_start, range_end FROM outbox_lease;
INSERT INTO outbox_progress_v2 (range_start, range_end)
SELECT 0, outbox_slot_count() - 1 WHERE NOT EXISTS (SELECT 1 FROM outbox_lease);
DROP TABLE outbox_progress;
ALTER TABLE outbox_progress_v2 RENAME TO outbox_progress;
ALTER INDEX outbox_progress_v2_pkey RENAME TO outbox_progress_pkey;

-- The audit trail: one row per completed batch (not per event). An event's batch is the
-- one of its range whose snapshots bracket its transaction (see outbox_event_log).
CREATE TABLE outbox_batch (
    batch_id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    range_start   integer     NOT NULL,
    range_end     integer     NOT NULL,
    epoch         bigint      NOT NULL,
    relay_id      text        NOT NULL,
    from_snapshot pg_snapshot NOT NULL,
    to_snapshot   pg_snapshot NOT NULL,
    to_xmax       xid8        NOT NULL,
    events        integer     NOT NULL,
    parked        integer     NOT NULL,
    finished_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_batch_to_xmax ON outbox_batch (to_xmax);
-- Rows are deleted by age once the retention passed: vacuum after a fixed number of them,
-- so the space is reused and the table levels off like the events do.
ALTER TABLE outbox_batch SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_cost_delay = 0
);
CREATE INDEX outbox_batch_finished ON outbox_batch (finished_at);

-- Keeps outbox_progress in step with outbox_lease after the layout changed (called in the
-- same transaction). A new range starts from the earliest done snapshot among the old
-- ranges it overlaps: whatever any of them had not published is published again
-- (duplicates at a re-cut, never a loss). Snapshots taken later see everything earlier
-- ones saw; among snapshots, the earlier has the smaller (xmax, xmin, -in-progress count).
CREATE FUNCTION outbox_progress_follow_layout() RETURNS void LANGUAGE sql AS $$
    INSERT INTO outbox_progress (range_start, range_end, done_snapshot, carried)
    SELECT l.range_start, l.range_end,
           coalesce((SELECT p.done_snapshot FROM outbox_progress p
                      WHERE p.range_start <= l.range_end AND p.range_end >= l.range_start
                      ORDER BY pg_snapshot_xmax(p.done_snapshot), pg_snapshot_xmin(p.done_snapshot),
                               (SELECT count(*) FROM pg_snapshot_xip(p.done_snapshot)) DESC
                      LIMIT 1), '1:1:'),
           (SELECT jsonb_agg(jsonb_build_object(
                       'lo', greatest(p.range_start, l.range_start), 'hi', least(p.range_end, l.range_end),
                       'done', p.done_snapshot::text, 'batch', p.batch_snapshot::text,
                       'batch_seq', p.batch_seq))
              FROM outbox_progress p
             WHERE p.range_start <= l.range_end AND p.range_end >= l.range_start)
      FROM outbox_lease l
     WHERE NOT EXISTS (SELECT 1 FROM outbox_progress p
                        WHERE p.range_start = l.range_start AND p.range_end = l.range_end);
    DELETE FROM outbox_progress p
     WHERE EXISTS (SELECT 1 FROM outbox_lease)
       AND NOT EXISTS (SELECT 1 FROM outbox_lease l
                        WHERE l.range_start = p.range_start AND l.range_end = p.range_end);
$$;

-- True when an old range this range was cut from had already published the event (see
-- outbox_progress.carried): such events are skipped, so a re-cut publishes nothing twice.
CREATE FUNCTION outbox_carried_done(p_carried jsonb, p_slot integer, p_seq bigint, p_tx xid8)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT p_carried IS NOT NULL AND EXISTS (
        SELECT 1 FROM jsonb_array_elements(p_carried) c
         WHERE p_slot BETWEEN (c->>'lo')::int AND (c->>'hi')::int
           AND (pg_visible_in_snapshot(p_tx, (c->>'done')::pg_snapshot)
                OR (c->>'batch' IS NOT NULL AND pg_visible_in_snapshot(p_tx, (c->>'batch')::pg_snapshot)
                    AND p_seq <= (c->>'batch_seq')::bigint)))
$$;

-- Events not yet published (nor parked), found through the batch index: rows whose
-- transaction is not visible in their range's done snapshot, minus the published part of
-- an open batch.
CREATE VIEW outbox_pending AS
SELECT e.*
  FROM outbox_progress p
  CROSS JOIN LATERAL (
        SELECT * FROM outbox_event e
         WHERE e.tx >= pg_snapshot_xmax(p.done_snapshot)
           AND e.slot BETWEEN p.range_start AND p.range_end
        UNION ALL
        SELECT * FROM outbox_event e
         WHERE e.tx = ANY (ARRAY(SELECT pg_snapshot_xip(p.done_snapshot)))
           AND e.slot BETWEEN p.range_start AND p.range_end) e
 WHERE NOT pg_visible_in_snapshot(e.tx, p.done_snapshot)
   AND NOT (p.batch_snapshot IS NOT NULL AND pg_visible_in_snapshot(e.tx, p.batch_snapshot)
            AND e.seq <= p.batch_seq)
   AND NOT outbox_carried_done(p.carried, e.slot, e.seq, e.tx);

-- Every retained event with its batch: committed (transaction start), published (batch
-- finished), by which relay and epoch. published_at is null while it is pending or its
-- batch is still open.
CREATE VIEW outbox_event_log AS
SELECT e.seq, e.event_id, e.key, e.topic, e.event_type, e.slot, e.created_at,
       b.finished_at AS published_at, b.relay_id, b.epoch, b.batch_id
  FROM outbox_event e
  LEFT JOIN LATERAL (
        SELECT b.* FROM outbox_batch b
         WHERE b.to_xmax > e.tx AND e.slot BETWEEN b.range_start AND b.range_end
           AND pg_visible_in_snapshot(e.tx, b.to_snapshot)
           AND NOT pg_visible_in_snapshot(e.tx, b.from_snapshot)
         ORDER BY b.to_xmax LIMIT 1) b ON true;

-- Adds partitions ahead of the current transaction id: at least two spans of headroom, a
-- span sized by the xid rate since the newest partition was made (about p_span_seconds of
-- transactions, a power of two, at least p_min_span). Run by the relay's maintenance,
-- serialised by an advisory lock; returns how many partitions it made.
CREATE FUNCTION outbox_extend_partitions(p_span_seconds float8, p_min_span bigint DEFAULT 4096)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_xmax  numeric := pg_snapshot_xmax(pg_current_snapshot())::text::numeric;
    v_last  outbox_partition;
    v_rate  float8;
    v_span  numeric := p_min_span;
    v_lo    numeric := 0;
    v_hi    numeric;
    v_stray numeric;
    v_name  text;
    v_made  integer := 0;
BEGIN
    SELECT * INTO v_last FROM outbox_partition ORDER BY hi DESC LIMIT 1;
    IF FOUND THEN
        v_rate := (v_xmax - v_last.created_xmax::text::numeric)
                  / greatest(extract(epoch FROM now() - v_last.created_at)::float8, 1);
        v_span := least(greatest(p_min_span, 2 ^ ceil(log(2, greatest(v_rate * p_span_seconds, 2)::numeric))),
                        1073741824);
        v_lo := v_last.hi::text::numeric;
    END IF;
    -- Transaction ids already handed out beyond the last partition belong to the default
    -- partition from now on, and so does anything it already holds.
    SELECT tx::text::numeric + 1 INTO v_stray FROM outbox_event_default ORDER BY tx DESC LIMIT 1;
    v_lo := greatest(v_lo, coalesce(v_stray, 0));
    IF v_lo < v_xmax THEN
        v_lo := v_xmax;
    END IF;
    WHILE v_lo < v_xmax + 2 * v_span LOOP
        v_hi := v_lo + v_span;
        v_name := 'outbox_event_p' || v_hi::text;
        -- Created apart and attached: attaching needs no lock that stops writers or readers.
        EXECUTE format('CREATE TABLE %I (LIKE outbox_event INCLUDING DEFAULTS)', v_name);
        EXECUTE format('ALTER TABLE outbox_event ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       v_name, v_lo::text, v_hi::text);
        INSERT INTO outbox_partition (name, lo, hi, created_xmax)
        VALUES (v_name, v_lo::text::xid8, v_hi::text::xid8, v_xmax::text::xid8);
        v_lo := v_hi;
        v_made := v_made + 1;
    END LOOP;
    RETURN v_made;
END $$;

-- Marks the partitions whose whole span every range has passed: every transaction below
-- hi has ended and is visible in every range's done snapshot, so the partition holds only
-- published (or parked) events and can never receive a row again.
CREATE FUNCTION outbox_seal_partitions() RETURNS integer LANGUAGE sql AS $$
    WITH horizon AS (SELECT min(pg_snapshot_xmin(done_snapshot)) AS xmin FROM outbox_progress),
    sealed AS (
        UPDATE outbox_partition p SET sealed_at = now() FROM horizon h
         WHERE p.sealed_at IS NULL AND h.xmin IS NOT NULL AND p.hi <= h.xmin
        RETURNING 1)
    SELECT count(*)::integer FROM sealed
$$;
