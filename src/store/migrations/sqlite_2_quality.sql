-- Migration 2, SQLite: quality results, merge requests and their approvals, pushes to
-- guarded branches, and the hash-chained evidence of merges. Times are unix milliseconds.

CREATE TABLE quality_results (
    id                TEXT PRIMARY KEY,
    source            TEXT NOT NULL,
    dedup_key         TEXT NOT NULL UNIQUE,
    project_path      TEXT,
    gitlab_project_id INTEGER,
    sha               TEXT,
    git_ref           TEXT,
    mr_iid            INTEGER,
    build_id          TEXT,
    status_name       TEXT,
    outcome           TEXT,
    description       TEXT,
    target_url        TEXT,
    summary           TEXT,
    body              BLOB NOT NULL,
    received_at       INTEGER NOT NULL,
    processed_at      INTEGER
);
CREATE INDEX quality_sha ON quality_results (gitlab_project_id, sha, source);

CREATE TABLE merge_requests (
    project_id        INTEGER NOT NULL,
    iid               INTEGER NOT NULL,
    project_path      TEXT NOT NULL,
    source_project_id INTEGER NOT NULL,
    source_branch     TEXT NOT NULL,
    target_branch     TEXT NOT NULL,
    title             TEXT,
    author_id         INTEGER,
    author_username   TEXT,
    author_name       TEXT,
    head_sha          TEXT,
    state             TEXT,
    note_id           INTEGER,
    note_hash         TEXT,
    commit_authors    TEXT,
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (project_id, iid)
);

CREATE TABLE approvals (
    project_id   INTEGER NOT NULL,
    mr_iid       INTEGER NOT NULL,
    user_id      INTEGER NOT NULL,
    username     TEXT,
    name         TEXT,
    approved_at  INTEGER NOT NULL,
    withdrawn_at INTEGER,
    PRIMARY KEY (project_id, mr_iid, user_id)
);

CREATE TABLE guarded_pushes (
    event_id   TEXT PRIMARY KEY,
    project_id INTEGER NOT NULL,
    project_path TEXT NOT NULL,
    branch     TEXT NOT NULL,
    before_sha TEXT NOT NULL,
    after_sha  TEXT NOT NULL,
    username   TEXT,
    pushed_at  INTEGER NOT NULL
);
CREATE INDEX guarded_pushes_time ON guarded_pushes (pushed_at);

CREATE TABLE evidence (
    seq              INTEGER PRIMARY KEY,
    event_id         TEXT NOT NULL UNIQUE,
    project_path     TEXT NOT NULL,
    mr_iid           INTEGER NOT NULL,
    merge_commit_sha TEXT,
    merged_at        INTEGER NOT NULL,
    record           TEXT NOT NULL,
    prev_hash        TEXT NOT NULL,
    hash             TEXT NOT NULL
);
CREATE INDEX evidence_time ON evidence (merged_at);


-- Deviation checks delivered to the compliance webhook: each covers since the last one.
CREATE TABLE compliance_checks (
    checked_at  INTEGER PRIMARY KEY,
    since       INTEGER NOT NULL,
    merges      INTEGER NOT NULL,
    deviations  INTEGER NOT NULL
);
