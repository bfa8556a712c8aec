-- ci-bridge schema, SQLite. Times are unix milliseconds.

CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    dedup_key   TEXT NOT NULL UNIQUE,
    project     TEXT,
    received_at INTEGER NOT NULL,
    body        BLOB NOT NULL,
    processed_at INTEGER,
    outcome     TEXT
);

CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    unique_key  TEXT UNIQUE,
    payload     TEXT NOT NULL,
    run_at      INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    version     INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until INTEGER,
    dead        INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX jobs_ready ON jobs (dead, run_at);

CREATE TABLE builds (
    id                TEXT PRIMARY KEY,
    event_id          TEXT NOT NULL,
    project_path      TEXT NOT NULL,
    gitlab_project_id INTEGER NOT NULL,
    sha               TEXT NOT NULL,
    git_ref           TEXT NOT NULL,
    status_name       TEXT NOT NULL,
    job_name          TEXT NOT NULL,
    params            TEXT NOT NULL,
    mr_iid            INTEGER,
    state             TEXT NOT NULL,
    queue_id          INTEGER,
    build_number      INTEGER,
    result            TEXT,
    description       TEXT,
    created_at        INTEGER NOT NULL,
    triggered_at      INTEGER,
    started_at        INTEGER,
    finished_at       INTEGER,
    duration_ms       INTEGER
);
CREATE INDEX builds_event ON builds (event_id);
CREATE INDEX builds_sha ON builds (gitlab_project_id, sha);

CREATE TABLE commit_statuses (
    gitlab_project_id   INTEGER NOT NULL,
    sha                 TEXT NOT NULL,
    status_name         TEXT NOT NULL,
    git_ref             TEXT NOT NULL,
    build_id            TEXT NOT NULL,
    wanted_rank         INTEGER NOT NULL DEFAULT 0,
    posted_rank         INTEGER NOT NULL DEFAULT 0,
    pending_description TEXT,
    pending_url         TEXT,
    running_description TEXT,
    running_url         TEXT,
    final_state         TEXT,
    final_description   TEXT,
    final_url           TEXT,
    last_error          TEXT,
    updated_at          INTEGER NOT NULL,
    PRIMARY KEY (gitlab_project_id, sha, status_name)
);
