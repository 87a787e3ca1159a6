-- Least privilege for writers (docs/operations.md, "Security"): a service that only
-- enqueues needs EXECUTE on the two entry points and nothing else on the outbox.
--
-- Run by the outbox's owner (or a superuser) once per writer role:
--   SELECT outbox_grant_writer('orders_service');
-- The first call makes the two entry points run with their owner's rights (SECURITY
-- DEFINER) under a fixed search_path, so that a caller cannot slip its own objects in
-- front of the outbox's. That costs CPU per call (about 9 points of enqueue overhead at
-- 100 events per transaction, docs/benchmarks.md), so it is done only when a separate
-- writer role is wanted. A later migration that replaces these functions must keep
-- their security attributes.
CREATE FUNCTION outbox_grant_writer(p_role name) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_path text := format('pg_catalog, %I', current_schema());
BEGIN
    EXECUTE format('ALTER FUNCTION outbox_enqueue(text, text, text, bytea, jsonb) SECURITY DEFINER SET search_path = %s', v_path);
    EXECUTE format('ALTER FUNCTION outbox_enqueue_batch(text[], text[], text[], bytea[], jsonb[]) SECURITY DEFINER SET search_path = %s', v_path);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), p_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION outbox_enqueue(text, text, text, bytea, jsonb), '
                   'outbox_enqueue_batch(text[], text[], text[], bytea[], jsonb[]), '
                   'outbox_max_batch_keys(), outbox_max_payload_bytes(), outbox_slot_count() TO %I', p_role);
END $$;
