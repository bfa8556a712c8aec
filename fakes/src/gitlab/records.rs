//! The GitLab fake's public data types: users, and snapshots tests read back.

/// A GitLab user as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Numeric user id.
    pub id: u64,
    /// Login name, e.g. `ci-bridge`.
    pub username: String,
    /// Display name.
    pub name: String,
}

impl User {
    /// A user with the given id, username and display name.
    pub fn new(id: u64, username: &str, name: &str) -> User {
        User {
            id,
            username: username.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// One commit status job (a `GenericCommitStatus`), as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct CommitStatus {
    /// Job id, unique across the instance.
    pub id: u64,
    /// The project the status belongs to.
    pub project_id: u64,
    /// The 40-hex commit id, lower case.
    pub sha: String,
    /// The ref the status (and its pipeline) is on.
    pub ref_: String,
    /// The status name (`name` or `context`, default `default`).
    pub name: String,
    /// `created`, `pending`, `running`, `success`, `failed`, `canceled` or `skipped`.
    pub state: String,
    /// Description as last applied.
    pub description: Option<String>,
    /// Target URL as last applied.
    pub target_url: Option<String>,
    /// Coverage as last applied.
    pub coverage: Option<f64>,
    /// The external pipeline the job belongs to.
    pub pipeline_id: u64,
    /// True once a newer job with the same name and ref replaced it.
    pub retried: bool,
}

/// One POST to `/projects/:id/statuses/:sha`, accepted or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusPost {
    /// The `:id` path segment as sent, decoded (a numeric id or `group/project`).
    pub project: String,
    /// The `:sha` path segment as sent.
    pub sha: String,
    /// The `state` parameter, if any.
    pub state: Option<String>,
    /// The effective name: `name`, else `context`, else `default`.
    pub name: String,
    /// The `ref` parameter, if any.
    pub ref_: Option<String>,
    /// The `target_url` parameter, if any.
    pub target_url: Option<String>,
    /// The `description` parameter, if any.
    pub description: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// The response body answered.
    pub body: String,
}

/// One note on a merge request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Note id, unique across the instance.
    pub id: u64,
    /// The body as stored (quick action lines removed, as GitLab does).
    pub body: String,
    /// Who wrote it.
    pub author: User,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 time of the last edit.
    pub updated_at: String,
    /// True for notes GitLab itself writes.
    pub system: bool,
}
