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

use crate::{
    config::ProjectConfig,
    store::{now_ms, ClaimedJob, GuardedPush, JobKind, MergeRequestRow, NewJob, UserRef},
    worker::{JobError, Outcome, Services},
};

/// The `audit` job's payload: the project whose planned events it walks (or, from
/// before the cursors, one event).
#[derive(serde::Deserialize)]
struct Payload {
    project: Option<String>,
    event_id: Option<String>,
}

/// Events audited in one run at the most; a full batch runs again at once.
const EVENTS_PER_RUN: i64 = 64;

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

/// Feeds a project's planned events to the audit trail, oldest first.
pub async fn run(services: &Services, job: &ClaimedJob) -> Result<Outcome, JobError> {
    let payload: Payload = serde_json::from_str(&job.payload)
        .map_err(|e| JobError::Invalid(format!("audit payload: {e}")))?;
    let store = &services.store;
    if let Some(event_id) = &payload.event_id {
        audit_event(services, event_id).await?;
        store.complete(job).await?;
        return Ok(Outcome::Done);
    }
    let project = payload.project.unwrap_or_default();
    let events = store.unaudited_events(&project, EVENTS_PER_RUN).await?;
    for event_id in &events {
        audit_event(services, event_id).await?;
        store.mark_audited(event_id).await?;
    }
    if events.len() as i64 == EVENTS_PER_RUN {
        return Ok(Outcome::Again(now_ms()));
    }
    store.complete(job).await?;
    Ok(Outcome::Done)
}

/// Records what one event means for the audit trail; running it twice changes nothing.
async fn audit_event(services: &Services, event_id: &str) -> Result<(), JobError> {
    let Some((kind, body)) = services.store.event_body(event_id).await? else {
        return Err(JobError::Invalid(format!("event {event_id} is not stored")));
    };
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = value["project"]["path_with_namespace"]
        .as_str()
        .unwrap_or("");
    if let Some(project) = services.config.project(path) {
        match kind.as_str() {
            "merge_request" => merge_request(services, project, event_id, &value).await?,
            "push" => push(services, project, event_id, &value).await?,
            _ => {}
        }
    }
    Ok(())
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
    project: &ProjectConfig,
    event_id: &str,
    value: &Value,
) -> Result<(), JobError> {
    let attrs = &value["object_attributes"];
    let (Some(iid), Some(project_id)) = (
        attrs["iid"].as_i64(),
        attrs["target_project_id"]
            .as_i64()
            .or(value["project"]["id"].as_i64()),
    ) else {
        return Ok(());
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
    let store = &services.store;
    store.upsert_merge_request(&row).await?;

    let action = attrs["action"].as_str().unwrap_or("");
    match (action, &actor) {
        ("approved" | "approval", Some(user)) => {
            store.record_approval(project_id, iid, user).await?;
            tracing::info!(project = %project.gitlab, iid, user = user.id, "approval recorded");
        }
        ("unapproved" | "unapproval", Some(user)) => {
            store.record_unapproval(project_id, iid, user.id).await?;
            tracing::info!(project = %project.gitlab, iid, user = user.id, "approval withdrawn");
        }
        ("merge", _) => evidence::record_merge(services, project, event_id, value).await?,
        _ => {}
    }
    if project.quality.merge_request_checks {
        store.enqueue(&[mr_check_job(project_id, iid)]).await?;
    }
    Ok(())
}

/// Records a push to the default branch, a protected branch or a configured one: each
/// must be explained by a recorded merge, or it is a deviation.
async fn push(
    services: &Services,
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
        services.store.record_guarded_push(&push).await?;
    }
    Ok(())
}
