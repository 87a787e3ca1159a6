-- The outbox: events written by services in their own transactions, published by the relay.
--
-- Ordering contract (see docs/guarantees.md and ../shared/design/ordering.md):
-- every writer enqueues through outbox_enqueue / outbox_enqueue_batch, which take a
-- transaction-scoped advisory lock on a 64-bit hash of the key *before* drawing the
-- sequence number. The lock is held until the writer commits or rolls back, so for one
-- key, sequence order equals commit order. Writers of different keys never wait for
-- each other (only on the rare 64-bit hash collision).
--
-- Progress is per row: a row stays in outbox_event until the broker acknowledged it,
-- then the relay deletes it. There is no sequence cursor, so a transaction that
-- commits late with a low sequence number is found by the next read.

CREATE SEQUENCE outbox_seq AS bigint;

CREATE TABLE outbox_event (
    -- slot = hash(key) & (outbox_slot_count() - 1): the unit of ownership of relay partitions.
    slot        integer     NOT NULL,
    seq         bigint      NOT NULL,
    key         text        NOT NULL,
    topic       text        NOT NULL,
    event_type  text        NOT NULL,
    payload     bytea       NOT NULL,
    headers     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- stable across retries and republishing: consumers deduplicate on it.
    event_id    uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- one index serves the relay's read (per slot, in sequence order) and its delete.
    PRIMARY KEY (slot, seq)
);

-- Events the relay could not publish for a permanent reason (for example a topic the
-- broker refuses), moved here with the reason instead of being retried forever.
CREATE TABLE outbox_parked (
    slot        integer     NOT NULL,
    seq         bigint      NOT NULL PRIMARY KEY,
    key         text        NOT NULL,
    topic       text        NOT NULL,
    event_type  text        NOT NULL,
    payload     bytea       NOT NULL,
    headers     jsonb       NOT NULL,
    event_id    uuid        NOT NULL,
    created_at  timestamptz NOT NULL,
    reason      text        NOT NULL,
    parked_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_parked_key ON outbox_parked (key, seq);

-- What each relay partition (a contiguous slot range) has published so far.
CREATE TABLE outbox_progress (
    range_start     integer     NOT NULL,
    range_end       integer     NOT NULL,
    last_seq        bigint      NOT NULL DEFAULT 0,
    published_total bigint      NOT NULL DEFAULT 0,
    parked_total    bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (range_start, range_end)
);

-- Fixed hash space shared by every writer and the relay. Changing it needs an empty outbox.
CREATE FUNCTION outbox_slot_count() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT 1024';

-- Largest payload accepted, kept below the broker's default 5 MiB message limit so that
-- properties and framing still fit.
CREATE FUNCTION outbox_max_payload_bytes() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT 5177344';

CREATE FUNCTION outbox_key_hash(p_key text) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT hashtextextended(p_key, 7307)';

CREATE FUNCTION outbox_slot(p_key text) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS 'SELECT (outbox_key_hash(p_key) & (outbox_slot_count() - 1))::integer';

-- Rejects what the relay could never publish, naming the field and what to do.
CREATE FUNCTION outbox_validate(p_key text, p_topic text, p_event_type text, p_payload bytea, p_headers jsonb)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_bad text;
BEGIN
    IF p_key IS NULL OR p_key = '' THEN
        RAISE EXCEPTION 'outbox: key must not be empty'
            USING ERRCODE = '22023', HINT = 'pass the aggregate or entity id whose events must stay in order';
    END IF;
    IF p_topic IS NULL OR p_topic !~ '^((persistent|non-persistent)://[A-Za-z0-9_=:.%-]+/[A-Za-z0-9_=:.%-]+/)?[A-Za-z0-9_=:.%-]+$'
       OR length(p_topic) > 512 OR p_topic LIKE '%-partition-%' THEN
        RAISE EXCEPTION 'outbox: topic % is not a valid Pulsar topic name', quote_nullable(p_topic)
            USING ERRCODE = '22023',
                  HINT = 'use a short name of letters, digits and _-=:.% (it maps to persistent://public/default/<name>) or a full persistent://tenant/namespace/topic name, without "-partition-"';
    END IF;
    IF p_event_type IS NULL OR p_event_type = '' THEN
        RAISE EXCEPTION 'outbox: event_type must not be empty' USING ERRCODE = '22023';
    END IF;
    IF p_payload IS NULL THEN
        RAISE EXCEPTION 'outbox: payload must not be null (use an empty bytea)' USING ERRCODE = '22023';
    END IF;
    IF octet_length(p_payload) > outbox_max_payload_bytes() THEN
        RAISE EXCEPTION 'outbox: payload of % bytes exceeds the limit of % bytes', octet_length(p_payload), outbox_max_payload_bytes()
            USING ERRCODE = '54000', HINT = 'store large bodies elsewhere and put a reference in the event';
    END IF;
    IF p_headers IS NULL OR jsonb_typeof(p_headers) <> 'object' THEN
        RAISE EXCEPTION 'outbox: headers must be a JSON object of string values' USING ERRCODE = '22023';
    END IF;
    SELECT h.key INTO v_bad FROM jsonb_each(p_headers) h
     WHERE jsonb_typeof(h.value) <> 'string' OR h.key IN ('event_id', 'seq', 'event_type') OR h.key = ''
     LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'outbox: header % must have a string value and must not be empty or one of event_id, seq, event_type', quote_literal(v_bad)
            USING ERRCODE = '22023';
    END IF;
END $$;

-- The public SQL interface: call it inside your own transaction. Returns the sequence number.
CREATE FUNCTION outbox_enqueue(p_key text, p_topic text, p_event_type text, p_payload bytea,
                               p_headers jsonb DEFAULT '{}'::jsonb)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_hash bigint;
    v_seq  bigint;
BEGIN
    PERFORM outbox_validate(p_key, p_topic, p_event_type, p_payload, p_headers);
    v_hash := outbox_key_hash(p_key);
    -- Held until commit: the next writer of this key draws its number after we are visible.
    PERFORM pg_advisory_xact_lock(v_hash);
    v_seq := nextval('outbox_seq');
    INSERT INTO outbox_event (slot, seq, key, topic, event_type, payload, headers)
    VALUES ((v_hash & (outbox_slot_count() - 1))::integer, v_seq, p_key, p_topic, p_event_type, p_payload, p_headers);
    RETURN v_seq;
END $$;

-- Several events in one call, in array order. Key locks are taken in a fixed order first,
-- so two batch writers sharing keys cannot deadlock on each other.
CREATE FUNCTION outbox_enqueue_batch(p_keys text[], p_topics text[], p_event_types text[],
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
