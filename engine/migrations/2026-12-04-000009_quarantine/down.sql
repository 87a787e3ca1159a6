DROP TABLE outbox_quarantine;
DROP INDEX outbox_parked_unresolved;
ALTER TABLE outbox_parked
    DROP COLUMN held_behind,
    DROP COLUMN attempts,
    DROP COLUMN resolution,
    DROP COLUMN resolved_by,
    DROP COLUMN resolved_at;
