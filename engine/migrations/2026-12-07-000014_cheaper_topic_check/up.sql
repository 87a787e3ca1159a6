-- A cheaper topic check in the batch enqueue (docs/benchmarks.md, "Enqueue cost").
--
-- Timed in a loop of 2,000 calls on 100-event arrays, the topic check of
-- outbox_enqueue_batch took ~200 µs per call, as much as every other check together and
-- ~7% of inserting the 100 rows: the planner pushed the tests below the DISTINCT, so the
-- regular expression ran for every row instead of every distinct name. Now a batch of one
-- topic (the usual case) checks it once, and a batch of several keeps the tests above the
-- DISTINCT. Same checks, same errors (outbox_validate still raises them).

-- True when the relay could never publish to this topic name; outbox_validate says why.
CREATE FUNCTION outbox_topic_refused(p_topic text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_topic IS NULL OR p_topic LIKE 'non-persistent://%' OR length(p_topic) > 512
        OR p_topic LIKE '%-partition-%'
        OR p_topic !~ '^(persistent://[A-Za-z0-9_=:.%-]+/[A-Za-z0-9_=:.%-]+/)?[A-Za-z0-9_=:.%-]+$'
$$;

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
    -- raises its own error for it, so messages match outbox_enqueue's.
    -- Topics. A batch nearly always names one topic: then it is checked once (an array
    -- containment test in C, ~7 µs per 100 events, where the query below took ~200 µs).
    -- Otherwise each distinct name is checked once; OFFSET 0 keeps the checks above the
    -- DISTINCT (pushed below it, the regular expression ran for every row).
    IF p_topics <@ ARRAY[p_topics[1]] THEN
        v_bad := CASE WHEN outbox_topic_refused(p_topics[1]) THEN 1 END;
    ELSE
        SELECT min(e.i) INTO v_bad
          FROM unnest(p_topics) WITH ORDINALITY AS e(topic, i)
         WHERE e.topic IN (
                SELECT d.topic FROM (SELECT DISTINCT t AS topic FROM unnest(p_topics) t OFFSET 0) d
                 WHERE outbox_topic_refused(d.topic))
            OR e.topic IS NULL;
    END IF;
    -- The rest per row, the cheap tests first.
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
