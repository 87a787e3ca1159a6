-- Operator pauses (`outbox-relay pause`): slot ranges whose events the relays leave
-- pending until `outbox-relay resume`. (0, 1023) is "all". Every relay reads this table
-- once per lease round; a paused range is held, not lost: its events stay pending and go
-- out in order after the resume.
CREATE TABLE outbox_pause (
    lo        integer     NOT NULL,
    hi        integer     NOT NULL,
    paused_at timestamptz NOT NULL DEFAULT now(),
    paused_by text        NOT NULL,
    PRIMARY KEY (lo, hi),
    CHECK (lo >= 0 AND hi >= lo)
);
