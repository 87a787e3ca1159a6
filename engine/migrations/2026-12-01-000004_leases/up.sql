-- Several relay processes share one outbox through fenced range leases (docs/architecture.md).
--
-- outbox_relay: the members. A relay renews its row every tick; a row whose expires_at
-- has passed (judged by this database's clock, never a relay's) is a dead member.
CREATE TABLE outbox_relay (
    relay_id     text        PRIMARY KEY,
    host         text        NOT NULL,
    pid          integer     NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    -- set when a relay shuts down gracefully: the planner hands its ranges to others.
    leaving      boolean     NOT NULL DEFAULT false
);

-- outbox_lease: the slot space cut into contiguous ranges, one row each, together covering
-- 0 .. outbox_slot_count() - 1 exactly once. A range is published only by its owner, and
-- every write a relay makes for a range (acknowledging, parking) is conditional on the
-- epoch it was granted: a takeover draws a new epoch, which fences the previous owner.
CREATE TABLE outbox_lease (
    range_start integer     PRIMARY KEY,
    range_end   integer     NOT NULL,
    owner       text,
    epoch       bigint      NOT NULL DEFAULT 0,
    expires_at  timestamptz NOT NULL DEFAULT '-infinity',
    -- a relay that gave the range up as unhealthy; the planner prefers others until then.
    avoid_owner text,
    avoid_until timestamptz,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (range_start <= range_end)
);

-- Epochs come from one sequence, so a (range, epoch) pair is never granted twice, even
-- across a change of the range layout.
CREATE SEQUENCE outbox_lease_epoch AS bigint;

-- The layout the relays converge to: the number of ranges. Ranges that must be split or
-- merged are re-cut only once no live relay holds them, so no key is ever owned twice.
CREATE TABLE outbox_lease_layout (
    singleton     boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    target_ranges integer     NOT NULL CHECK (target_ranges BETWEEN 1 AND 1024),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- outbox_validate below also refuses non-persistent:// topics (their messages vanish
-- while no subscriber is connected).
-- The whole message must fit the broker's limit (5 MiB by default), not only the payload:
-- the key travels twice (partition and ordering key), headers become properties.
CREATE FUNCTION outbox_max_message_bytes() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT 5177344';

CREATE FUNCTION outbox_message_bytes(p_key text, p_event_type text, p_payload bytea, p_headers jsonb)
RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT octet_length(p_payload) + 2 * octet_length(p_key) + octet_length(p_event_type)
           + coalesce(octet_length(p_headers::text), 0) + 128
$$;

CREATE OR REPLACE FUNCTION outbox_validate(p_key text, p_topic text, p_event_type text, p_payload bytea, p_headers jsonb)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_bad text;
BEGIN
    IF p_key IS NULL OR p_key = '' THEN
        RAISE EXCEPTION 'outbox: key must not be empty'
            USING ERRCODE = '22023', HINT = 'pass the aggregate or entity id whose events must stay in order';
    END IF;
    IF p_topic LIKE 'non-persistent://%' THEN
        RAISE EXCEPTION 'outbox: topic % is non-persistent: the broker drops its messages while no subscriber is connected, which would lose committed events', quote_literal(p_topic)
            USING ERRCODE = '22023', HINT = 'use a persistent:// topic or a short name';
    END IF;
    IF p_topic IS NULL OR p_topic !~ '^(persistent://[A-Za-z0-9_=:.%-]+/[A-Za-z0-9_=:.%-]+/)?[A-Za-z0-9_=:.%-]+$'
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
    IF outbox_message_bytes(p_key, p_event_type, p_payload, p_headers) > outbox_max_message_bytes() THEN
        RAISE EXCEPTION 'outbox: message of % bytes (payload, key twice, event type, headers) exceeds the broker limit of % bytes',
              outbox_message_bytes(p_key, p_event_type, p_payload, p_headers), outbox_max_message_bytes()
            USING ERRCODE = '54000', HINT = 'shorten the key and headers, or store large bodies elsewhere and put a reference in the event';
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
