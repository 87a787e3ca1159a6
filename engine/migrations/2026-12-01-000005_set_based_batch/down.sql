-- The loop version of migration 1 (with migration 4's checks through outbox_validate).
CREATE OR REPLACE FUNCTION outbox_enqueue_batch(p_keys text[], p_topics text[], p_event_types text[],
                                                p_payloads bytea[], p_headers jsonb[])
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    v_n    integer := coalesce(array_length(p_keys, 1), 0);
    v_seqs bigint[] := '{}';
    v_hash bigint;
    i      integer;
BEGIN
    IF coalesce(array_length(p_topics, 1), 0) <> v_n OR coalesce(array_length(p_event_types, 1), 0) <> v_n
       OR coalesce(array_length(p_payloads, 1), 0) <> v_n OR coalesce(array_length(p_headers, 1), 0) <> v_n THEN
        RAISE EXCEPTION 'outbox: outbox_enqueue_batch needs arrays of equal length' USING ERRCODE = '22023';
    END IF;
    FOR i IN 1..v_n LOOP
        PERFORM outbox_validate(p_keys[i], p_topics[i], p_event_types[i], p_payloads[i], p_headers[i]);
    END LOOP;
    FOR v_hash IN SELECT DISTINCT outbox_key_hash(k) FROM unnest(p_keys) k ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(v_hash);
    END LOOP;
    FOR i IN 1..v_n LOOP
        v_hash := outbox_key_hash(p_keys[i]);
        v_seqs := v_seqs || nextval('outbox_seq');
        INSERT INTO outbox_event (slot, seq, key, topic, event_type, payload, headers)
        VALUES ((v_hash & (outbox_slot_count() - 1))::integer, v_seqs[i], p_keys[i], p_topics[i],
                p_event_types[i], p_payloads[i], p_headers[i]);
    END LOOP;
    RETURN v_seqs;
END $$;
