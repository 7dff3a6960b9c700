-- Commands waiting for, or given, a human's approval.
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    tool TEXT NOT NULL,
    command TEXT NOT NULL,
    cwd TEXT NOT NULL,
    risk INTEGER NOT NULL,
    reasons TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    decided_at TEXT,
    decided_by TEXT,
    note TEXT,
    used_at TEXT
);
CREATE INDEX IF NOT EXISTS approvals_lookup ON approvals (command, status);
