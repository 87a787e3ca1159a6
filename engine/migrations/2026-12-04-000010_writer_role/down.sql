DROP FUNCTION outbox_grant_writer(name);
ALTER FUNCTION outbox_enqueue(text, text, text, bytea, jsonb) SECURITY INVOKER RESET search_path;
ALTER FUNCTION outbox_enqueue_batch(text[], text[], text[], bytea[], jsonb[]) SECURITY INVOKER RESET search_path;
