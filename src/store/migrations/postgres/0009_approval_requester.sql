-- Who asked for an approval, as a reader can name it: the MCP client's self-declared name
-- ("client claude-code"), or the autonomous run that asked ("investigation of rule disk").
-- NULL for approvals queued before this column existed.
ALTER TABLE approvals ADD COLUMN requested_by TEXT;
