-- Why a range is not moving (`outbox-relay status`): the owning relay records the last
-- failure of the range's cycles, and clears it once a cycle succeeds. Informational,
-- written without fencing.
ALTER TABLE outbox_progress
    ADD COLUMN last_error    text,
    ADD COLUMN last_error_at timestamptz;
