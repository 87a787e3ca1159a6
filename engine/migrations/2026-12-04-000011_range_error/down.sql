ALTER TABLE outbox_progress DROP COLUMN last_error, DROP COLUMN last_error_at;
