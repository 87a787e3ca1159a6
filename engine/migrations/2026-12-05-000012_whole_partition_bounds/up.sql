-- Partition bounds and names as whole transaction ids. `2 ^ ceil(log(2, x))` is a numeric
-- with sixteen decimal places, which made the span, and so every bound and name after the
-- first round, look like `outbox_event_p125723.0000000000000000`. PostgreSQL 15 reads such
-- a text as an xid8 (it stops at the dot); the bound is now a whole number, as it should
-- be. Partitions already named that way keep their names; retention retires them as any.
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
