-- outbox_event is a queue: every row is inserted once and deleted once. Default
-- autovacuum waits for 20 % of the table to be dead, and the relay's index scans walk
-- those dead entries meanwhile (measured: read time per cycle 2 ms -> 7 ms within 30 s
-- at 5,000 events/s). Vacuum it after a fixed number of deletes, without throttling.
ALTER TABLE outbox_event SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 50000
);
