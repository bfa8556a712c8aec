-- A scheduled compliance check covers every evidence record after the last one the
-- previous check delivered, and every guarded push no delivered check has looked at, so
-- that nothing falls between two checks however late a record is committed. The last
-- record's hash is kept with the check: `audit verify` compares the chain against it, so
-- records removed from the end of the chain are noticed.
ALTER TABLE compliance_checks ADD COLUMN through_seq BIGINT;
ALTER TABLE compliance_checks ADD COLUMN through_hash TEXT;
ALTER TABLE guarded_pushes ADD COLUMN checked_at BIGINT;
CREATE INDEX guarded_pushes_unchecked ON guarded_pushes (pushed_at) WHERE checked_at IS NULL;
