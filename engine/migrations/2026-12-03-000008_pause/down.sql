DROP TABLE outbox_pause;
