-- Named leases: one holder at a time does the work the name stands for (the monitor's
-- evaluation and outbox pass), until expires_at unless renewed; a holder that dies frees it
-- when it expires.
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
