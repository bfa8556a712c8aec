//! GitLab webhook payloads: the fields ci-bridge reads, after GitLab's documented schema.
//!
//! Unknown fields are ignored; a field an event needs and does not carry is a
//! [`PayloadError`] naming it, which the HTTP edge answers with 400.

use serde::Deserialize;

/// The all-zero SHA GitLab uses for "no commit" (a branch created or deleted).
pub const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    #[error("payload lacks {0}")]
    Missing(&'static str),
    #[error("{0}")]
    Invalid(String),
}

/// What kind of delivery this is, from `X-Gitlab-Event` (or, for a system hook, the
/// payload's `object_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Push,
    TagPush,
    MergeRequest,
    Note,
    Pipeline,
    Job,
    Other,
}

impl EventKind {
    pub fn from_header(header: &str) -> Self {
        match header.trim() {
            "Push Hook" => Self::Push,
            "Tag Push Hook" => Self::TagPush,
            "Merge Request Hook" => Self::MergeRequest,
            "Note Hook" | "Confidential Note Hook" => Self::Note,
            "Pipeline Hook" => Self::Pipeline,
            "Job Hook" | "Build Hook" => Self::Job,
            _ => Self::Other,
        }
    }

    pub fn from_object_kind(kind: &str) -> Self {
        match kind {
            "push" => Self::Push,
            "tag_push" => Self::TagPush,
            "merge_request" => Self::MergeRequest,
            "note" => Self::Note,
            "pipeline" => Self::Pipeline,
            "build" => Self::Job,
            _ => Self::Other,
        }
    }

    /// Reads back what [`EventKind::as_str`] stored.
    pub fn from_stored(text: &str) -> Self {
        match text {
            "job" => Self::Job,
            other => Self::from_object_kind(other),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Push => "push",
            Self::TagPush => "tag_push",
            Self::MergeRequest => "merge_request",
            Self::Note => "note",
            Self::Pipeline => "pipeline",
            Self::Job => "job",
            Self::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Project {
    pub id: Option<u64>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub path_with_namespace: Option<String>,
    pub git_http_url: Option<String>,
    pub default_branch: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct User {
    pub id: Option<u64>,
    pub name: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Author {
    pub name: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Commit {
    pub id: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    pub author: Option<Author>,
}

/// `Push Hook` and `Tag Push Hook`.
#[derive(Debug, Clone, Deserialize)]
pub struct PushEvent {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub before: String,
    pub after: String,
    pub checkout_sha: Option<String>,
    pub user_id: Option<u64>,
    pub user_name: Option<String>,
    pub user_username: Option<String>,
    pub user_email: Option<String>,
    pub project_id: Option<u64>,
    pub project: Project,
    #[serde(default)]
    pub commits: Vec<Commit>,
}

impl PushEvent {
    /// The branch name for `refs/heads/...`, or `None` for any other ref.
    pub fn branch(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/heads/")
    }

    pub fn tag(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/tags/")
    }

    pub fn is_deletion(&self) -> bool {
        self.after == ZERO_SHA
    }

    pub fn project_id(&self) -> Option<u64> {
        self.project.id.or(self.project_id)
    }

    /// The commit `after` points at, when the payload lists it (the newest 20 are listed).
    pub fn head_commit(&self) -> Option<&Commit> {
        self.commits.iter().find(|c| c.id == self.after)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct MergeRequestAttributes {
    pub id: Option<u64>,
    pub iid: u64,
    pub action: Option<String>,
    pub state: Option<String>,
    pub title: Option<String>,
    pub source_branch: String,
    pub target_branch: String,
    pub source_project_id: u64,
    pub target_project_id: u64,
    pub author_id: Option<u64>,
    pub last_commit: Option<Commit>,
    pub oldrev: Option<String>,
    pub draft: Option<bool>,
    pub work_in_progress: Option<bool>,
    pub merge_commit_sha: Option<String>,
    pub source: Option<Project>,
    pub target: Option<Project>,
    pub url: Option<String>,
}

/// `Merge Request Hook`.
#[derive(Debug, Clone, Deserialize)]
pub struct MergeRequestEvent {
    #[serde(default)]
    pub user: User,
    pub project: Project,
    pub object_attributes: MergeRequestAttributes,
    /// What this update changed: `{field: {previous, current}}`.
    #[serde(default)]
    pub changes: Option<serde_json::Value>,
}

/// A label as GitLab sends it in `changes.labels`.
#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    pub title: String,
}

impl MergeRequestEvent {
    pub fn action(&self) -> &str {
        self.object_attributes.action.as_deref().unwrap_or("")
    }

    /// True for the actions that put new code on the merge request: opened, reopened, or
    /// updated with new commits (`oldrev` is only sent when the head moved).
    pub fn brings_new_code(&self) -> bool {
        match self.action() {
            "open" | "reopen" => true,
            "update" => self.object_attributes.oldrev.is_some(),
            _ => false,
        }
    }

    pub fn is_draft(&self) -> bool {
        let attrs = &self.object_attributes;
        attrs.draft.or(attrs.work_in_progress).unwrap_or(false)
    }

    /// True when this update took the merge request out of draft.
    pub fn left_draft(&self) -> bool {
        let Some(changes) = &self.changes else {
            return false;
        };
        let flag = |field: &str| {
            let change = &changes[field];
            change["previous"].as_bool() == Some(true) && change["current"].as_bool() == Some(false)
        };
        let title = &changes["title"];
        let title_lost_prefix = match (title["previous"].as_str(), title["current"].as_str()) {
            (Some(previous), Some(current)) => is_draft_title(previous) && !is_draft_title(current),
            _ => false,
        };
        flag("draft") || flag("work_in_progress") || title_lost_prefix
    }

    /// Labels this update added.
    pub fn labels_added(&self) -> Vec<String> {
        let Some(changes) = &self.changes else {
            return Vec::new();
        };
        let titles = |side: &str| -> Vec<String> {
            let labels: Vec<Label> =
                serde_json::from_value(changes["labels"][side].clone()).unwrap_or_default();
            labels.into_iter().map(|l| l.title).collect()
        };
        let before = titles("previous");
        titles("current")
            .into_iter()
            .filter(|t| !before.contains(t))
            .collect()
    }
}

/// GitLab's draft title prefixes (`Draft:`, `[Draft]`, `(Draft)`, and the older `WIP:`).
fn is_draft_title(title: &str) -> bool {
    let lower = title.trim_start().to_ascii_lowercase();
    ["draft:", "[draft]", "(draft)", "draft -", "wip:", "[wip]"]
        .iter()
        .any(|prefix| lower.starts_with(prefix))
}

/// `ci skip` markers GitLab itself honours in a commit message.
pub fn has_ci_skip(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("[ci skip]") || lower.contains("[skip ci]")
}

#[derive(Debug, Clone, Deserialize)]
pub struct NoteAttributes {
    pub id: Option<u64>,
    pub note: Option<String>,
    pub noteable_type: Option<String>,
    pub action: Option<String>,
}

/// `Note Hook`: a comment, with the merge request it is on (if it is on one).
#[derive(Debug, Clone, Deserialize)]
pub struct NoteEvent {
    #[serde(default)]
    pub user: User,
    pub project: Project,
    pub object_attributes: NoteAttributes,
    #[serde(default)]
    pub merge_request: Option<MergeRequestAttributes>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PipelineAttributes {
    pub source: Option<String>,
    pub status: Option<String>,
}

/// `Pipeline Hook`: only its source is read (to ignore the ones our statuses create).
#[derive(Debug, Clone, Deserialize)]
pub struct PipelineEvent {
    pub object_attributes: PipelineAttributes,
}

/// Only what every delivery needs to be routed: the project it belongs to.
#[derive(Debug, Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    object_kind: Option<std::borrow::Cow<'a, str>>,
    project: Option<EnvelopeProject<'a>>,
    repository: Option<EnvelopeRepository<'a>>,
}

#[derive(Debug, Deserialize)]
struct EnvelopeProject<'a> {
    #[serde(borrow)]
    path_with_namespace: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
struct EnvelopeRepository<'a> {
    #[serde(borrow)]
    homepage: Option<std::borrow::Cow<'a, str>>,
}

/// The project path and `object_kind` of a delivery, read without trusting anything else.
pub struct Routing {
    pub project_path: Option<String>,
    pub object_kind: Option<String>,
}

/// Reads the project path: `project.path_with_namespace`, or for payloads without a
/// `project` object (Job Hooks), the path of `repository.homepage`.
pub fn routing(body: &[u8]) -> Result<Routing, PayloadError> {
    let envelope: Envelope<'_> = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => PayloadError::Invalid(format!("payload: {e}")),
        _ => PayloadError::NotJson(e.to_string()),
    })?;
    let from_project = envelope
        .project
        .and_then(|p| p.path_with_namespace)
        .map(|p| p.into_owned());
    Ok(Routing {
        project_path: from_project.or_else(|| path_of_homepage(envelope.repository)),
        object_kind: envelope.object_kind.map(|k| k.into_owned()),
    })
}

/// The project path of `repository.homepage`, for payloads without `project`.
fn path_of_homepage(repository: Option<EnvelopeRepository<'_>>) -> Option<String> {
    let homepage = repository?.homepage?;
    let url = url::Url::parse(&homepage).ok()?;
    Some(url.path().trim_matches('/').to_owned()).filter(|p| !p.is_empty())
}

/// A delivery parsed into the shape ci-bridge acts on.
#[derive(Debug, Clone)]
pub enum GitLabEvent {
    Push(Box<PushEvent>),
    TagPush(Box<PushEvent>),
    MergeRequest(Box<MergeRequestEvent>),
    Note(Box<NoteEvent>),
    Pipeline(Box<PipelineEvent>),
    /// Recorded as received; nothing in it is acted on.
    Other,
}

impl GitLabEvent {
    /// Parses and checks a body of the given kind. The checks are the ones the worker relies
    /// on later, so an event that was accepted can always be processed.
    pub fn parse(kind: EventKind, body: &[u8]) -> Result<Self, PayloadError> {
        // PostgreSQL text cannot hold NUL; no GitLab field legitimately carries one.
        if memchr::memmem::find(body, b"\\u0000").is_some() {
            return Err(PayloadError::Invalid(
                "payload contains a NUL character".into(),
            ));
        }
        let json = |e: serde_json::Error| PayloadError::Invalid(format!("payload: {e}"));
        Ok(match kind {
            EventKind::Push | EventKind::TagPush => {
                Self::checked_push(kind, serde_json::from_slice(body).map_err(json)?)?
            }
            EventKind::MergeRequest => {
                Self::checked_merge_request(serde_json::from_slice(body).map_err(json)?)?
            }
            EventKind::Note => {
                let note: NoteEvent = serde_json::from_slice(body).map_err(json)?;
                if let Some(commit) = note
                    .merge_request
                    .as_ref()
                    .and_then(|mr| mr.last_commit.as_ref())
                {
                    check_sha("merge_request.last_commit.id", &commit.id)?;
                }
                GitLabEvent::Note(Box::new(note))
            }
            EventKind::Pipeline => {
                GitLabEvent::Pipeline(Box::new(serde_json::from_slice(body).map_err(json)?))
            }
            EventKind::Job | EventKind::Other => GitLabEvent::Other,
        })
    }

    fn checked_push(kind: EventKind, push: PushEvent) -> Result<Self, PayloadError> {
        check_sha("after", &push.after)?;
        check_sha("before", &push.before)?;
        if push.project_id().is_none() {
            return Err(PayloadError::Missing("project.id"));
        }
        Ok(if kind == EventKind::Push {
            GitLabEvent::Push(Box::new(push))
        } else {
            GitLabEvent::TagPush(Box::new(push))
        })
    }

    fn checked_merge_request(mr: MergeRequestEvent) -> Result<Self, PayloadError> {
        if mr.brings_new_code() {
            let commit = mr
                .object_attributes
                .last_commit
                .as_ref()
                .ok_or(PayloadError::Missing("object_attributes.last_commit"))?;
            check_sha("object_attributes.last_commit.id", &commit.id)?;
        }
        Ok(GitLabEvent::MergeRequest(Box::new(mr)))
    }
}

fn check_sha(field: &'static str, sha: &str) -> Result<(), PayloadError> {
    if sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(PayloadError::Invalid(format!(
            "{field} is not a 40-character commit SHA"
        )))
    }
}

mod single_pass;

pub use single_pass::routed_event;

#[cfg(test)]
mod tests;
