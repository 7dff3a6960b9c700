-- When a deliverer claimed an outbox row: only a claim older than the stale window counts as
-- cut off by a crash, so a second deliverer never takes over a send still in flight.
ALTER TABLE monitor_outbox ADD COLUMN claimed_at TEXT;
