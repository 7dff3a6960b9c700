-- How many secrets were masked in the call's result before the model saw it (0: none).
ALTER TABLE audit_log ADD COLUMN redactions BIGINT NOT NULL DEFAULT 0;
