-- The Data Ghost's memory: one row per run, the schema snapshot it took, and one profile per
-- table per run (JSON text), so the next run can diff the schema and judge trends.
CREATE TABLE IF NOT EXISTS ghost_runs (
    id TEXT PRIMARY KEY,
    database_name TEXT NOT NULL,
    taken_at TEXT NOT NULL,
    report_path TEXT,
    snapshot TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ghost_runs_by_database ON ghost_runs (database_name, taken_at);
CREATE TABLE IF NOT EXISTS ghost_profiles (
    run_id TEXT NOT NULL,
    database_name TEXT NOT NULL,
    table_name TEXT NOT NULL,
    taken_at TEXT NOT NULL,
    profile TEXT NOT NULL,
    PRIMARY KEY (run_id, table_name)
);
CREATE INDEX IF NOT EXISTS ghost_profiles_by_table ON ghost_profiles (database_name, table_name, taken_at);
