-- Signed-in web console sessions, in the store so that they survive a restart and every
-- replica sharing the store knows them. Only a SHA-256 of the cookie's session id is kept;
-- token_check binds the session to the access token it was opened under (a SHA-256 of the id
-- and the token): a changed or newly set token ends every older session. flash is the
-- one-time message the session's next page shows.
CREATE TABLE IF NOT EXISTS console_sessions (
    id_hash TEXT PRIMARY KEY,
    token_check TEXT NOT NULL,
    csrf TEXT NOT NULL,
    remote TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    flash TEXT
);
CREATE INDEX IF NOT EXISTS console_sessions_expiry ON console_sessions (expires_at);
