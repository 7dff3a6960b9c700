-- Which journal line an audit row came from (`<process>:<seq>`; NULL for rows written without
-- the journal). A restart replays the journal of a process that stopped before committing its
-- rows; the unique key makes that replay insert each row once, however often it runs.
ALTER TABLE audit_log ADD COLUMN journal_key TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS audit_log_journal_key ON audit_log (journal_key);
