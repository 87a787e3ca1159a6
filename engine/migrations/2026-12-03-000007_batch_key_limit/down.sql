DROP FUNCTION outbox_enqueue_batch(text[], text[], text[], bytea[], jsonb[]);
ALTER FUNCTION outbox_enqueue_batch_unchecked(text[], text[], text[], bytea[], jsonb[])
    RENAME TO outbox_enqueue_batch;
DROP FUNCTION outbox_max_batch_keys();
