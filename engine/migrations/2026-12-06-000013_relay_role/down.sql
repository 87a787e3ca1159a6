DROP FUNCTION outbox_grant_relay(name);
DROP FUNCTION outbox_empty_default_partition(float8);
DROP FUNCTION outbox_drop_partition(text);
DROP FUNCTION outbox_truncate_partition(text);
ALTER FUNCTION outbox_extend_partitions(float8, bigint) SECURITY INVOKER RESET search_path;
-- Back to migration 12's definition (tables created by unqualified name).
CREATE OR REPLACE FUNCTION outbox_extend_partitions(p_span_seconds float8, p_min_span bigint DEFAULT 4096)
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
DROP FUNCTION outbox_partition_table(text);
DROP FUNCTION outbox_schema();
ALTER FUNCTION outbox_seal_partitions() SECURITY INVOKER RESET search_path;
GRANT EXECUTE ON FUNCTION outbox_extend_partitions(float8, bigint), outbox_seal_partitions() TO PUBLIC;
GRANT EXECUTE ON FUNCTION outbox_enqueue(text, text, text, bytea, jsonb),
    outbox_enqueue_batch(text[], text[], text[], bytea[], jsonb[]) TO PUBLIC;
-- Back to migration 10's definition.
CREATE OR REPLACE FUNCTION outbox_grant_writer(p_role name) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_path text := format('pg_catalog, %I', current_schema());
BEGIN
    EXECUTE format('ALTER FUNCTION outbox_enqueue(text, text, text, bytea, jsonb) SECURITY DEFINER SET search_path = %s', v_path);
    EXECUTE format('ALTER FUNCTION outbox_enqueue_batch(text[], text[], text[], bytea[], jsonb[]) SECURITY DEFINER SET search_path = %s', v_path);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), p_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION outbox_enqueue(text, text, text, bytea, jsonb), '
                   'outbox_enqueue_batch(text[], text[], text[], bytea[], jsonb[]), '
                   'outbox_max_batch_keys(), outbox_max_payload_bytes(), outbox_slot_count() TO %I', p_role);
END $$;
