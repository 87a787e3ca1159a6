-- Back to migration 5's body (kept by migration 7 under this name).
CREATE OR REPLACE FUNCTION outbox_enqueue_batch_unchecked(p_keys text[], p_topics text[], p_event_types text[],
                                                p_payloads bytea[], p_headers jsonb[])
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    v_n    integer := coalesce(array_length(p_keys, 1), 0);
    v_bad  bigint;
    v_seqs bigint[];
BEGIN
    IF coalesce(array_length(p_topics, 1), 0) <> v_n OR coalesce(array_length(p_event_types, 1), 0) <> v_n
       OR coalesce(array_length(p_payloads, 1), 0) <> v_n OR coalesce(array_length(p_headers, 1), 0) <> v_n THEN
        RAISE EXCEPTION 'outbox: outbox_enqueue_batch needs arrays of equal length' USING ERRCODE = '22023';
    END IF;
    IF v_n = 0 THEN
        RETURN '{}';
    END IF;
    -- Find the first event any check of outbox_validate would refuse; that function then
    -- raises its own error for it, so messages match outbox_enqueue's. Topics are checked
    -- once per distinct name (a batch rarely has more than a few), the rest per row with
    -- the cheap tests first: this pass was most of the function's cost.
    SELECT min(e.i) INTO v_bad
      FROM unnest(p_topics) WITH ORDINALITY AS e(topic, i)
     WHERE e.topic IN (
            SELECT d.topic FROM (SELECT DISTINCT t AS topic FROM unnest(p_topics) t) d
             WHERE d.topic IS NULL OR d.topic LIKE 'non-persistent://%' OR length(d.topic) > 512
                OR d.topic LIKE '%-partition-%'
                OR d.topic !~ '^(persistent://[A-Za-z0-9_=:.%-]+/[A-Za-z0-9_=:.%-]+/)?[A-Za-z0-9_=:.%-]+$')
        OR e.topic IS NULL;
    IF v_bad IS NULL THEN
        SELECT e.i INTO v_bad
          FROM unnest(p_keys, p_event_types, p_payloads, p_headers) WITH ORDINALITY
               AS e(key, event_type, payload, headers, i)
         WHERE e.key IS NULL OR e.key = ''
            OR e.event_type IS NULL OR e.event_type = ''
            OR e.payload IS NULL OR octet_length(e.payload) > outbox_max_payload_bytes()
            OR e.headers IS NULL
            OR octet_length(e.payload) + 2 * octet_length(e.key) + octet_length(e.event_type) + 130
               > outbox_max_message_bytes()
            OR (e.headers <> '{}'::jsonb AND (
                  jsonb_typeof(e.headers) <> 'object'
                  OR outbox_message_bytes(e.key, e.event_type, e.payload, e.headers) > outbox_max_message_bytes()
                  OR EXISTS (SELECT 1 FROM jsonb_each(e.headers) h
                              WHERE jsonb_typeof(h.value) <> 'string' OR h.key IN ('event_id', 'seq', 'event_type') OR h.key = '')))
         ORDER BY e.i
         LIMIT 1;
    END IF;
    IF v_bad IS NOT NULL THEN
        PERFORM outbox_validate(p_keys[v_bad], p_topics[v_bad], p_event_types[v_bad], p_payloads[v_bad], p_headers[v_bad]);
        RAISE EXCEPTION 'outbox: event % of the batch is invalid', v_bad USING ERRCODE = '22023';
    END IF;
    -- Held until commit, in a fixed order (two batch writers sharing keys cannot deadlock).
    PERFORM pg_advisory_xact_lock(l.hash)
       FROM (SELECT DISTINCT outbox_key_hash(k) AS hash FROM unnest(p_keys) k ORDER BY 1) l;
    WITH batch AS (
        SELECT e.*, outbox_key_hash(e.key) AS hash
          FROM unnest(p_keys, p_topics, p_event_types, p_payloads, p_headers) WITH ORDINALITY
               AS e(key, topic, event_type, payload, headers, i)
         ORDER BY e.i
    ), numbered AS (
        -- drawn row by row in array order (the subquery's order)
        SELECT b.*, nextval('outbox_seq') AS seq FROM batch b
    ), inserted AS (
        INSERT INTO outbox_event (slot, seq, key, topic, event_type, payload, headers)
        SELECT (hash & (outbox_slot_count() - 1))::integer, seq, key, topic, event_type, payload, headers
          FROM numbered
        RETURNING seq
    )
    SELECT array_agg(seq ORDER BY seq) INTO v_seqs FROM inserted;
    RETURN v_seqs;
END $$;

DROP FUNCTION outbox_topic_refused(text);
