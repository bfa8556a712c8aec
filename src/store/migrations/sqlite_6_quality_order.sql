-- Migration 6, SQLite: the order quality results take on their status. A SonarQube
-- analysis carries when it was made (an older one delivered late must not win); every
-- result applied to a status gets the next number of that status, and the newest
-- applied one is what the note and the evidence show. Times are unix milliseconds.

ALTER TABLE quality_results ADD COLUMN analysed_ms INTEGER;
ALTER TABLE quality_results ADD COLUMN changed_ms INTEGER;
ALTER TABLE quality_results ADD COLUMN applied_seq INTEGER;
ALTER TABLE quality_results ADD COLUMN decision TEXT;
CREATE INDEX quality_build ON quality_results (build_id);
