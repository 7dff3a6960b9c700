-- Silences: a rule muted for a while (ends_at) or until it resolves (ends_at NULL). A muted
-- rule is still evaluated; its notices are not queued. ended_at is set when a silence ends
-- early (lifted by hand, or the rule resolved); who set and lifted it is kept for the record.
CREATE TABLE IF NOT EXISTS monitor_silences (
    id TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    ends_at TEXT,
    ended_at TEXT,
    ended_by TEXT
);
CREATE INDEX IF NOT EXISTS monitor_silences_open ON monitor_silences (ended_at, rule_id);
