-- Events are planned and audited per project, oldest first, by one job per project that
-- walks these cursors.
ALTER TABLE events ADD COLUMN audited_at BIGINT;
CREATE INDEX events_unplanned ON events (project, received_at) WHERE processed_at IS NULL;
CREATE INDEX events_unaudited ON events (project, received_at) WHERE audited_at IS NULL;
