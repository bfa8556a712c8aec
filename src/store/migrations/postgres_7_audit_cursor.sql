-- Migration 7: the audit trail's cursor indexes only planned events. Its query asks for
-- events planned but not yet audited; with the index over every unaudited event, each
-- audit run read past all events still waiting to be planned (a whole burst) to find the
-- few it could take. Indexing planned events only also spares every stored webhook one
-- index write: an event enters this index when it is planned, not when it is received.
DROP INDEX events_unaudited;
CREATE INDEX events_unaudited ON events (project, received_at)
    WHERE audited_at IS NULL AND processed_at IS NOT NULL;
