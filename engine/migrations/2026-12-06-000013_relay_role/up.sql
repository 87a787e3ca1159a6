-- Least privilege for the relay (docs/operations.md, "Security"): a role that runs the
-- relay and the admin commands (`status`, `dlq`, `pause`, `replay`) but cannot write,
-- change or remove events, nor alter the schema. Only `outbox-relay migrate` needs the
-- outbox's owner.
--
-- The relay's partition upkeep (create, attach, seal, truncate, drop) is DDL that
-- PostgreSQL allows only to a table's owner, so it goes through functions. The relay
-- calls them whatever its role; `outbox_grant_relay` makes them run with their owner's
-- rights (SECURITY DEFINER under a fixed search_path, pg_temp last so that a caller's
-- temporary tables cannot stand in for the outbox's) and grants them to the role. Each
-- acts only on a table that is a partition of outbox_event and that the outbox's own
-- bookkeeping lists in the state that allows it: a relay role cannot truncate or drop
-- any other table through them.

-- The schema the outbox lives in (where migrations created outbox_event).
CREATE FUNCTION outbox_schema() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = 'outbox_event'::regclass
$$;

-- The table named `p_name` in the outbox's schema if it is a partition of outbox_event,
-- else NULL: the upkeep functions touch nothing else, whatever name they are given.
CREATE FUNCTION outbox_partition_table(p_name text) RETURNS regclass LANGUAGE sql STABLE AS $$
    SELECT i.inhrelid::regclass FROM pg_inherits i
     WHERE i.inhparent = 'outbox_event'::regclass
       AND i.inhrelid = to_regclass(format('%I.%I', outbox_schema(), p_name))
$$;

-- Migration 12's function with its tables created in the outbox's schema by name: run
-- with the owner's rights, its search_path starts with pg_catalog, where an unqualified
-- CREATE TABLE would land.
CREATE OR REPLACE FUNCTION outbox_extend_partitions(p_span_seconds float8, p_min_span bigint DEFAULT 4096)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_xmax   numeric := pg_snapshot_xmax(pg_current_snapshot())::text::numeric;
    v_schema text := outbox_schema();
    v_last   outbox_partition;
    v_rate   float8;
    v_span   numeric := p_min_span;
    v_lo     numeric := 0;
    v_hi     numeric;
    v_stray  numeric;
    v_name   text;
    v_made   integer := 0;
BEGIN
    SELECT * INTO v_last FROM outbox_partition ORDER BY hi DESC LIMIT 1;
    IF FOUND THEN
        v_rate := (v_xmax - v_last.created_xmax::text::numeric)
                  / greatest(extract(epoch FROM now() - v_last.created_at)::float8, 1);
        v_span := least(greatest(p_min_span, (2 ^ ceil(log(2, greatest(v_rate * p_span_seconds, 2)::numeric)))::bigint),
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
        EXECUTE format('CREATE TABLE %I.%I (LIKE outbox_event INCLUDING DEFAULTS)', v_schema, v_name);
        EXECUTE format('ALTER TABLE outbox_event ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                       v_schema, v_name, v_lo::text, v_hi::text);
        INSERT INTO outbox_partition (name, lo, hi, created_xmax)
        VALUES (v_name, v_lo::text::xid8, v_hi::text::xid8, v_xmax::text::xid8);
        v_lo := v_hi;
        v_made := v_made + 1;
    END LOOP;
    RETURN v_made;
END $$;

-- Empties a partition every range has passed (sealed). False when `p_name` is not a
-- sealed, untruncated outbox partition.
CREATE FUNCTION outbox_truncate_partition(p_name text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_table regclass;
BEGIN
    PERFORM 1 FROM outbox_partition
     WHERE name = p_name AND sealed_at IS NOT NULL AND truncated_at IS NULL
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    v_table := outbox_partition_table(p_name);
    IF v_table IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('TRUNCATE %s', v_table);
    UPDATE outbox_partition SET truncated_at = now() WHERE name = p_name;
    RETURN true;
END $$;

-- Drops a partition already truncated. False when `p_name` is not one.
CREATE FUNCTION outbox_drop_partition(p_name text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_table regclass;
BEGIN
    PERFORM 1 FROM outbox_partition WHERE name = p_name AND truncated_at IS NOT NULL FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    v_table := outbox_partition_table(p_name);
    IF v_table IS NOT NULL THEN
        EXECUTE format('DROP TABLE %s', v_table);
    ELSIF to_regclass(format('%I.%I', outbox_schema(), p_name)) IS NOT NULL THEN
        -- A table of that name that is not a partition of the outbox: not ours to drop.
        RETURN false;
    END IF;
    DELETE FROM outbox_partition WHERE name = p_name;
    RETURN true;
END $$;

-- Empties the default partition (rows of transaction ids no partition covered when they
-- were written) once every range has passed its newest row and that row is older than
-- the retention. Takes the partition's lock first: a writer still adding to it waits,
-- or the caller's lock_timeout gives up. True when it emptied it.
CREATE FUNCTION outbox_empty_default_partition(p_retention_seconds float8)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_ready boolean;
BEGIN
    LOCK TABLE outbox_event_default IN ACCESS EXCLUSIVE MODE;
    SELECT coalesce(
             (SELECT tx FROM outbox_event_default ORDER BY tx DESC LIMIT 1)
               < (SELECT min(pg_snapshot_xmin(done_snapshot)) FROM outbox_progress)
             AND (SELECT max(created_at) FROM outbox_event_default)
               < now() - p_retention_seconds * interval '1 second',
             false)
      INTO v_ready;
    IF v_ready THEN
        TRUNCATE outbox_event_default;
    END IF;
    RETURN v_ready;
END $$;

-- Run by the outbox's owner (or a superuser) once per relay role, and again after a
-- migration that replaces one of the functions above (a replaced function loses its
-- SECURITY DEFINER; the relay then reports "permission denied" and, past
-- database_refusal_grace_ms, stops naming it):
--   SELECT outbox_grant_relay('outbox_relay');
CREATE FUNCTION outbox_grant_relay(p_role name) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_path     text := format('pg_catalog, %I, pg_temp', current_schema());
    v_function text;
BEGIN
    FOREACH v_function IN ARRAY ARRAY[
        'outbox_extend_partitions(float8, bigint)',
        'outbox_seal_partitions()',
        'outbox_truncate_partition(text)',
        'outbox_drop_partition(text)',
        'outbox_empty_default_partition(float8)'
    ] LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = %s', v_function, v_path);
        -- Functions are executable by PUBLIC unless revoked; with the owner's rights
        -- they must be the granted roles' only.
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', v_function);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', v_function, p_role);
    END LOOP;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), p_role);
    -- Read: events, partitions' bookkeeping, the sequence's position, the schema version.
    EXECUTE format('GRANT SELECT ON outbox_event, outbox_event_default, outbox_partition, '
                   'outbox_pending, outbox_event_log, outbox_seq, __diesel_schema_migrations TO %I', p_role);
    -- Read and write: the relay's own state (membership, leases, progress, the batch
    -- audit trail, pauses, dead letters, quarantined keys).
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON outbox_relay, outbox_lease, '
                   'outbox_lease_layout, outbox_progress, outbox_batch, outbox_pause, '
                   'outbox_parked, outbox_quarantine TO %I', p_role);
    EXECUTE format('GRANT USAGE ON SEQUENCE outbox_lease_epoch TO %I', p_role);
END $$;

-- The writers' entry points run with the owner's rights once a writer role was granted,
-- and functions are executable by PUBLIC by default: any role that may use the schema
-- could then enqueue. From now on only granted roles (and the owner) may.
CREATE OR REPLACE FUNCTION outbox_grant_writer(p_role name) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_path text := format('pg_catalog, %I, pg_temp', current_schema());
BEGIN
    EXECUTE format('ALTER FUNCTION outbox_enqueue(text, text, text, bytea, jsonb) SECURITY DEFINER SET search_path = %s', v_path);
    EXECUTE format('ALTER FUNCTION outbox_enqueue_batch(text[], text[], text[], bytea[], jsonb[]) SECURITY DEFINER SET search_path = %s', v_path);
    REVOKE EXECUTE ON FUNCTION outbox_enqueue(text, text, text, bytea, jsonb) FROM PUBLIC;
    REVOKE EXECUTE ON FUNCTION outbox_enqueue_batch(text[], text[], text[], bytea[], jsonb[]) FROM PUBLIC;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), p_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION outbox_enqueue(text, text, text, bytea, jsonb), '
                   'outbox_enqueue_batch(text[], text[], text[], bytea[], jsonb[]), '
                   'outbox_max_batch_keys(), outbox_max_payload_bytes(), outbox_slot_count() TO %I', p_role);
END $$;

-- Databases where a writer role was already granted: close the same door now, and put
-- pg_temp last in the entry points' search_path (unlisted, a caller's temporary tables
-- would come first).
DO $$
BEGIN
    IF (SELECT prosecdef FROM pg_proc WHERE oid = 'outbox_enqueue(text, text, text, bytea, jsonb)'::regprocedure) THEN
        REVOKE EXECUTE ON FUNCTION outbox_enqueue(text, text, text, bytea, jsonb) FROM PUBLIC;
        REVOKE EXECUTE ON FUNCTION outbox_enqueue_batch(text[], text[], text[], bytea[], jsonb[]) FROM PUBLIC;
        EXECUTE format('ALTER FUNCTION outbox_enqueue(text, text, text, bytea, jsonb) SET search_path = pg_catalog, %I, pg_temp', current_schema());
        EXECUTE format('ALTER FUNCTION outbox_enqueue_batch(text[], text[], text[], bytea[], jsonb[]) SET search_path = pg_catalog, %I, pg_temp', current_schema());
    END IF;
END $$;
