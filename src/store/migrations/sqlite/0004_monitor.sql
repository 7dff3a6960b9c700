-- The monitor: each alert rule's state, the notification outbox, and local log-file offsets.
CREATE TABLE IF NOT EXISTS monitor_rule_state (
    rule_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    value REAL,
    since TEXT NOT NULL,
    breach_since TEXT,
    last_evaluated TEXT,
    last_notified TEXT,
    cooldown_until TEXT,
    notified_firing INTEGER NOT NULL DEFAULT 0,
    breaches TEXT NOT NULL DEFAULT '',
    problem TEXT,
    recent TEXT NOT NULL DEFAULT '[]'
);
-- One row per (notification, channel); delivered_at stays NULL until a delivery succeeds.
CREATE TABLE IF NOT EXISTS monitor_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    delivered_at TEXT
);
CREATE INDEX IF NOT EXISTS monitor_outbox_pending ON monitor_outbox (status, rule_id, id);
CREATE TABLE IF NOT EXISTS monitor_log_offsets (
    rule_id TEXT NOT NULL,
    path TEXT NOT NULL,
    file_id TEXT NOT NULL,
    offset_bytes INTEGER NOT NULL,
    PRIMARY KEY (rule_id, path)
);
-- Match counts per (rule, evaluation), so a log rule's value covers its window.
CREATE TABLE IF NOT EXISTS monitor_log_counts (
    rule_id TEXT PRIMARY KEY,
    recent TEXT NOT NULL
);
