-- Same checks as before, cheaper on the hot path: events without headers skip the
-- header scan (most events), which was the largest part of outbox_enqueue's own cost.
CREATE OR REPLACE FUNCTION outbox_validate(p_key text, p_topic text, p_event_type text, p_payload bytea, p_headers jsonb)
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
    IF p_headers = '{}'::jsonb THEN
        RETURN;  -- the common case: no header to check
    END IF;
    SELECT h.key INTO v_bad FROM jsonb_each(p_headers) h
     WHERE jsonb_typeof(h.value) <> 'string' OR h.key IN ('event_id', 'seq', 'event_type') OR h.key = ''
     LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'outbox: header % must have a string value and must not be empty or one of event_id, seq, event_type', quote_literal(v_bad)
            USING ERRCODE = '22023';
    END IF;
END $$;

