DROP TABLE outbox_lease_layout;
DROP SEQUENCE outbox_lease_epoch;
DROP TABLE outbox_lease;
DROP TABLE outbox_relay;
-- outbox_validate keeps the whole-message check; dropping its helpers would break it.
