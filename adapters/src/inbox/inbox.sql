-- The inbox of outbox_adapters::inbox: the event_ids a consumer has processed.
-- Run once on the consumer's database (outbox_adapters::inbox::install does it).
CREATE TABLE IF NOT EXISTS outbox_inbox (
    consumer     text        NOT NULL,
    event_id     text        NOT NULL,
    key          text        NOT NULL,
    topic        text        NOT NULL,
    seq          bigint,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
-- Retention deletes by age.
CREATE INDEX IF NOT EXISTS outbox_inbox_processed ON outbox_inbox (processed_at);
