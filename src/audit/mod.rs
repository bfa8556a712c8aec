//! The audit trail: approvals (four eyes), evidence records of merges, and deviations.
//!
//! - [`run`], the `audit` job every merge-request and push event enqueues (in order per
//!   project), records the merge request, approvals given and withdrawn, pushes to
//!   guarded branches, and on a merge the evidence record.
//! - [`mr_check`] keeps the four-eyes status, [`note`] the summary note, [`quality`] turns
//!   SonarQube analyses and SAST reports into statuses.
//! - [`evidence`] is the hash chain, [`report`] the deviations, [`schedule`] the daily or
//!   weekly check that posts them.

pub mod chain;
pub mod cli;
pub mod evidence;
pub mod formats;
pub mod four_eyes;
pub mod mr_check;
pub mod note;
pub mod quality;
pub mod report;
pub mod schedule;
mod status;

use serde_json::Value;
use sqlx::{Any, Transaction};

use crate::{
    config::ProjectConfig,
    store::{
        audit_tx, insert_jobs, now_ms, ClaimedJob, GuardedPush, JobKind, MergeRequestRow, NewJob,
        PendingEvent, Store, UserRef,
    },
    worker::{JobError, Outcome, Services},
};

/// The `audit` job's payload: the project whose planned events it walks (or, from
/// before the cursors, one event).
#[derive(serde::Deserialize)]
struct Payload {
    project: Option<String>,
    event_id: Option<String>,
}

/// Events audited in one run, and so in one transaction, at the most; a full batch runs
/// again at once. Small for the same reason as the planner's: on SQLite a run holds the
/// write lock that webhooks are waiting for.
const EVENTS_PER_RUN: i64 = 16;

/// The job that keeps a merge request's MrCheck job unique.
pub fn mr_check_job(project_id: i64, iid: i64) -> NewJob {
    let payload = serde_json::json!({ "project_id": project_id, "iid": iid }).to_string();
    NewJob::now(JobKind::MrCheck, payload).unique(format!("mr-check:{project_id}:{iid}"))
}

/// The job that renders a merge request's note; one per merge request at a time.
pub fn mr_note_job(project_id: i64, iid: i64) -> NewJob {
    let payload = serde_json::json!({ "project_id": project_id, "iid": iid }).to_string();
    NewJob::now(JobKind::MrNote, payload).unique(format!("mr-note:{project_id}:{iid}"))
}

/// Feeds a project's planned events to the audit trail, oldest first, writing what they
/// mean in one transaction per run (see [`Writes`]). The merge-request checks they call
/// for are queued once per merge request, with the events marked audited, at the end of
/// that transaction.
pub async fn run(services: &Services, job: &ClaimedJob) -> Result<Outcome, JobError> {
    let payload: Payload = serde_json::from_str(&job.payload)
        .map_err(|e| JobError::Invalid(format!("audit payload: {e}")))?;
    let store = &services.store;
    let events = match &payload.event_id {
        Some(event_id) => {
            let Some((kind, body)) = store.event_body(event_id).await? else {
                return Err(JobError::Invalid(format!("event {event_id} is not stored")));
            };
            let id = event_id.clone();
            vec![PendingEvent { id, kind, body }]
        }
        None => {
            let project = payload.project.as_deref().unwrap_or_default();
            store.unaudited_events(project, EVENTS_PER_RUN).await?
        }
    };
    let mut writes = Writes { store, tx: None };
    let mut checks: Vec<NewJob> = Vec::new();
    for event in &events {
        if let Some(check) = audit_event(services, &mut writes, event).await? {
            if !checks
                .iter()
                .any(|queued| queued.unique_key == check.unique_key)
            {
                checks.push(check);
            }
        }
    }
    // A single event named by an old payload has no cursor to move.
    let audited: Vec<&str> = match payload.event_id {
        Some(_) => Vec::new(),
        None => events.iter().map(|event| event.id.as_str()).collect(),
    };
    if !checks.is_empty() || !audited.is_empty() {
        let tx = writes.tx().await?;
        insert_jobs(tx, &checks.iter().collect::<Vec<_>>()).await?;
        audit_tx::mark_audited(tx, &audited).await?;
    }
    writes.commit().await?;
    if !checks.is_empty() {
        store.wake_workers();
    }
    if payload.event_id.is_none() && events.len() as i64 == EVENTS_PER_RUN {
        return Ok(Outcome::Again(now_ms()));
    }
    store.complete(job).await?;
    Ok(Outcome::Done)
}

/// The audit run's writes: one transaction, begun at the first write and committed before
/// anything that must see them from another connection (a merge's evidence record reads
/// the merge request and its approvals). On SQLite one commit, one fsync, serves the whole
/// run instead of one per statement.
struct Writes<'a> {
    store: &'a Store,
    tx: Option<Transaction<'static, Any>>,
}

impl Writes<'_> {
    async fn tx(&mut self) -> sqlx::Result<&mut Transaction<'static, Any>> {
        if self.tx.is_none() {
            self.tx = Some(self.store.begin().await?);
        }
        Ok(self.tx.as_mut().expect("the transaction was just begun"))
    }

    async fn commit(&mut self) -> sqlx::Result<()> {
        match self.tx.take() {
            Some(tx) => tx.commit().await,
            None => Ok(()),
        }
    }
}

/// Records what one event means for the audit trail; running it twice changes nothing.
/// Returns the merge-request check it calls for, if any.
async fn audit_event(
    services: &Services,
    writes: &mut Writes<'_>,
    event: &PendingEvent,
) -> Result<Option<NewJob>, JobError> {
    let value: Value = serde_json::from_slice(&event.body).unwrap_or(Value::Null);
    let path = value["project"]["path_with_namespace"]
        .as_str()
        .unwrap_or("");
    let Some(project) = services.config.project(path) else {
        return Ok(None);
    };
    match event.kind.as_str() {
        "merge_request" => merge_request(services, writes, project, &event.id, &value).await,
        "push" => {
            push(writes, project, &event.id, &value).await?;
            Ok(None)
        }
        _ => Ok(None),
    }
}

fn user_of(value: &Value) -> Option<UserRef> {
    Some(UserRef {
        id: value["id"].as_i64()?,
        username: value["username"].as_str().map(str::to_owned),
        name: value["name"].as_str().map(str::to_owned),
    })
}

async fn merge_request(
    services: &Services,
    writes: &mut Writes<'_>,
    project: &ProjectConfig,
    event_id: &str,
    value: &Value,
) -> Result<Option<NewJob>, JobError> {
    let attrs = &value["object_attributes"];
    let (Some(iid), Some(project_id)) = (
        attrs["iid"].as_i64(),
        attrs["target_project_id"]
            .as_i64()
            .or(value["project"]["id"].as_i64()),
    ) else {
        return Ok(None);
    };
    let actor = user_of(&value["user"]);
    let author_id = attrs["author_id"].as_i64();
    let actor_is_author = actor.as_ref().is_some_and(|a| Some(a.id) == author_id);
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let row = MergeRequestRow {
        project_id,
        iid,
        project_path: project.gitlab.clone(),
        source_project_id: attrs["source_project_id"].as_i64().unwrap_or(project_id),
        source_branch: text(&attrs["source_branch"]).unwrap_or_default(),
        target_branch: text(&attrs["target_branch"]).unwrap_or_default(),
        title: text(&attrs["title"]),
        author_id,
        author_username: actor
            .as_ref()
            .filter(|_| actor_is_author)
            .and_then(|a| a.username.clone()),
        author_name: actor
            .as_ref()
            .filter(|_| actor_is_author)
            .and_then(|a| a.name.clone()),
        head_sha: text(&attrs["last_commit"]["id"]),
        state: text(&attrs["state"]),
        ..MergeRequestRow::default()
    };
    audit_tx::upsert_merge_request(writes.tx().await?, &row).await?;

    let action = attrs["action"].as_str().unwrap_or("");
    match (action, &actor) {
        ("approved" | "approval", Some(user)) => {
            audit_tx::record_approval(writes.tx().await?, project_id, iid, user).await?;
            tracing::info!(project = %project.gitlab, iid, user = user.id, "approval recorded");
        }
        ("unapproved" | "unapproval", Some(user)) => {
            audit_tx::record_unapproval(writes.tx().await?, project_id, iid, user.id).await?;
            tracing::info!(project = %project.gitlab, iid, user = user.id, "approval withdrawn");
        }
        ("merge", _) => {
            writes.commit().await?;
            evidence::record_merge(services, project, event_id, value).await?;
        }
        _ => {}
    }
    Ok(project
        .quality
        .merge_request_checks
        .then(|| mr_check_job(project_id, iid)))
}

/// Records a push to the default branch, a protected branch or a configured one: each
/// must be explained by a recorded merge, or it is a deviation.
async fn push(
    writes: &mut Writes<'_>,
    project: &ProjectConfig,
    event_id: &str,
    value: &Value,
) -> Result<(), JobError> {
    let Some(branch) = value["ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("refs/heads/"))
    else {
        return Ok(());
    };
    let after = value["after"].as_str().unwrap_or("");
    if after.is_empty() || after == crate::gitlab::events::ZERO_SHA {
        return Ok(());
    }
    let default_branch = value["project"]["default_branch"].as_str();
    let guarded = value["ref_protected"].as_bool() == Some(true)
        || default_branch == Some(branch)
        || project
            .quality
            .protected_branches
            .iter()
            .any(|b| b == branch);
    let Some(project_id) = value["project"]["id"]
        .as_i64()
        .or(value["project_id"].as_i64())
    else {
        return Ok(());
    };
    if guarded {
        let push = GuardedPush {
            event_id: event_id.to_owned(),
            project_id,
            project_path: project.gitlab.clone(),
            branch: branch.to_owned(),
            before_sha: value["before"].as_str().unwrap_or("").to_owned(),
            after_sha: after.to_owned(),
            username: value["user_username"].as_str().map(str::to_owned),
            pushed_at: now_ms(),
        };
        audit_tx::record_guarded_push(writes.tx().await?, &push).await?;
    }
    Ok(())
}
