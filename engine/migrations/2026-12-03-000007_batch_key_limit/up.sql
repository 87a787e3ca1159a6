-- A batch's distinct keys are bounded before any lock is taken. Each key takes one
-- transaction-scoped advisory lock, and those live in PostgreSQL's shared lock table
-- (max_locks_per_transaction x (max_connections + max_prepared_transactions) entries for
-- the whole server). A batch with more keys than the table holds would fail half-way
-- with "out of shared memory"; worse, a large one would starve every other writer.
-- The limit: a quarter of the table, at most 10,000 keys.
CREATE FUNCTION outbox_max_batch_keys() RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT least(10000, greatest(64,
        current_setting('max_locks_per_transaction')::int
        * (current_setting('max_connections')::int + current_setting('max_prepared_transactions')::int) / 4))
$$;

-- The checked entry point wraps the set-based batch of migration 5, unchanged.
ALTER FUNCTION outbox_enqueue_batch(text[], text[], text[], bytea[], jsonb[])
    RENAME TO outbox_enqueue_batch_unchecked;

CREATE FUNCTION outbox_enqueue_batch(p_keys text[], p_topics text[], p_event_types text[],
                                     p_payloads bytea[], p_headers jsonb[])
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    v_keys  integer;
    v_limit integer := outbox_max_batch_keys();
BEGIN
    IF coalesce(array_length(p_keys, 1), 0) > v_limit THEN
        SELECT count(DISTINCT k) INTO v_keys FROM unnest(p_keys) k;
        IF v_keys > v_limit THEN
            RAISE EXCEPTION 'outbox: batch has % distinct keys, more than the limit of % (outbox_max_batch_keys(), a quarter of the server''s lock table)', v_keys, v_limit
                USING ERRCODE = '54000',
                      HINT = 'split the batch into transactions of fewer keys, or raise max_locks_per_transaction';
        END IF;
    END IF;
    RETURN outbox_enqueue_batch_unchecked(p_keys, p_topics, p_event_types, p_payloads, p_headers);
END
$$;
