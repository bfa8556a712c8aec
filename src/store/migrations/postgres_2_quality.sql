-- Migration 2, PostgreSQL: quality results, merge requests and their approvals, pushes to
-- guarded branches, and the hash-chained evidence of merges. Times are unix milliseconds.

CREATE TABLE quality_results (
    id                TEXT PRIMARY KEY,
    source            TEXT NOT NULL,
    dedup_key         TEXT NOT NULL UNIQUE,
    project_path      TEXT,
    gitlab_project_id BIGINT,
    sha               TEXT,
    git_ref           TEXT,
    mr_iid            BIGINT,
    build_id          TEXT,
    status_name       TEXT,
    outcome           TEXT,
    description       TEXT,
    target_url        TEXT,
    summary           TEXT,
    body              BYTEA NOT NULL,
    received_at       BIGINT NOT NULL,
    processed_at      BIGINT
);
CREATE INDEX quality_sha ON quality_results (gitlab_project_id, sha, source);

CREATE TABLE merge_requests (
    project_id        BIGINT NOT NULL,
    iid               BIGINT NOT NULL,
    project_path      TEXT NOT NULL,
    source_project_id BIGINT NOT NULL,
    source_branch     TEXT NOT NULL,
    target_branch     TEXT NOT NULL,
    title             TEXT,
    author_id         BIGINT,
    author_username   TEXT,
    author_name       TEXT,
    head_sha          TEXT,
    state             TEXT,
    note_id           BIGINT,
    note_hash         TEXT,
    commit_authors    TEXT,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (project_id, iid)
);

CREATE TABLE approvals (
    project_id   BIGINT NOT NULL,
    mr_iid       BIGINT NOT NULL,
    user_id      BIGINT NOT NULL,
    username     TEXT,
    name         TEXT,
    approved_at  BIGINT NOT NULL,
    withdrawn_at BIGINT,
    PRIMARY KEY (project_id, mr_iid, user_id)
);

CREATE TABLE guarded_pushes (
    event_id   TEXT PRIMARY KEY,
    project_id BIGINT NOT NULL,
    project_path TEXT NOT NULL,
    branch     TEXT NOT NULL,
    before_sha TEXT NOT NULL,
    after_sha  TEXT NOT NULL,
    username   TEXT,
    pushed_at  BIGINT NOT NULL
);
CREATE INDEX guarded_pushes_time ON guarded_pushes (pushed_at);

CREATE TABLE evidence (
    seq              BIGINT PRIMARY KEY,
    event_id         TEXT NOT NULL UNIQUE,
    project_path     TEXT NOT NULL,
    mr_iid           BIGINT NOT NULL,
    merge_commit_sha TEXT,
    merged_at        BIGINT NOT NULL,
    record           TEXT NOT NULL,
    prev_hash        TEXT NOT NULL,
    hash             TEXT NOT NULL
);
CREATE INDEX evidence_time ON evidence (merged_at);


-- Deviation checks delivered to the compliance webhook: each covers since the last one.
CREATE TABLE compliance_checks (
    checked_at  BIGINT PRIMARY KEY,
    since       BIGINT NOT NULL,
    merges      BIGINT NOT NULL,
    deviations  BIGINT NOT NULL
);
