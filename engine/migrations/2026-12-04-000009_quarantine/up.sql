-- Per-key quarantine (docs/operations.md, "Dead letters and quarantine").
--
-- An event that can never be published (or failed max_event_attempts times) is copied to
-- outbox_parked as a dead letter and its key is quarantined: the key's later events are
-- copied there too, as held behind it, in sequence order, while every other key of the
-- range keeps flowing. `outbox-relay dlq replay` asks the owning relay to publish the
-- key's unresolved entries in order and lift the quarantine; `dlq skip` drops dead
-- letters (with who and when) and releases what was held behind them.

ALTER TABLE outbox_parked
    -- null: this event failed; otherwise the seq of the dead letter it waits behind.
    ADD COLUMN held_behind bigint,
    ADD COLUMN attempts    integer     NOT NULL DEFAULT 1,
    ADD COLUMN resolution  text        CHECK (resolution IN ('replayed', 'skipped')),
    ADD COLUMN resolved_by text,
    ADD COLUMN resolved_at timestamptz;

-- Unresolved entries of a key, in order: what a release publishes.
CREATE INDEX outbox_parked_unresolved ON outbox_parked (key, seq) WHERE resolution IS NULL;

CREATE TABLE outbox_quarantine (
    key                  text        PRIMARY KEY,
    slot                 integer     NOT NULL,
    -- the dead letter the key waits behind
    since_seq            bigint      NOT NULL,
    reason               text        NOT NULL,
    quarantined_at       timestamptz NOT NULL DEFAULT now(),
    -- set by `dlq replay` / `dlq skip`: the owning relay publishes the key's unresolved
    -- entries in order, then deletes this row.
    release_requested_at timestamptz,
    release_requested_by text
);
CREATE INDEX outbox_quarantine_slot ON outbox_quarantine (slot);
