-- Back to per-row progress: pending events (not yet published) move to a plain table.
CREATE TABLE outbox_event_v1 (
    slot integer NOT NULL, seq bigint NOT NULL, key text NOT NULL, topic text NOT NULL,
    event_type text NOT NULL, payload bytea NOT NULL, headers jsonb NOT NULL DEFAULT '{}'::jsonb,
    event_id uuid NOT NULL DEFAULT gen_random_uuid(), created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (slot, seq));
INSERT INTO outbox_event_v1 (slot, seq, key, topic, event_type, payload, headers, event_id, created_at)
SELECT slot, seq, key, topic, event_type, payload, headers, event_id, created_at FROM outbox_pending;
DROP VIEW outbox_event_log;
DROP VIEW outbox_pending;
DROP FUNCTION outbox_seal_partitions();
DROP FUNCTION outbox_extend_partitions(float8, bigint);
DROP FUNCTION outbox_progress_follow_layout();
DROP FUNCTION outbox_carried_done(jsonb, integer, bigint, xid8);
DROP TABLE outbox_batch;
DROP TABLE outbox_event;
DROP TABLE outbox_partition;
ALTER TABLE outbox_event_v1 RENAME TO outbox_event;
ALTER INDEX outbox_event_v1_pkey RENAME TO outbox_event_pkey;
ALTER TABLE outbox_event SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 50000);
CREATE TABLE outbox_progress_v1 (
    range_start integer NOT NULL, range_end integer NOT NULL, last_seq bigint NOT NULL DEFAULT 0,
    published_total bigint NOT NULL DEFAULT 0, parked_total bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (range_start, range_end));
INSERT INTO outbox_progress_v1 (range_start, range_end, published_total, parked_total)
SELECT range_start, range_end, published_total, parked_total FROM outbox_progress;
DROP TABLE outbox_progress;
ALTER TABLE outbox_progress_v1 RENAME TO outbox_progress;
ALTER INDEX outbox_progress_v1_pkey RENAME TO outbox_progress_pkey;
