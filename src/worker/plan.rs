//! Deciding what a received GitLab event builds, and recording that decision with its
//! reason, so "why did this not build?" always has an answer.

use serde::Serialize;

use super::{JobError, Outcome, Services};
use crate::{
    config::{Config, ProjectConfig},
    gitlab::events::{EventKind, GitLabEvent, MergeRequestEvent, PushEvent},
    jenkins::params,
    store::{
        insert_builds, insert_jobs, statuses_tx::start_generation, ClaimedJob, JobKind, NewBuild,
        NewJob, StatusKey, Store,
    },
};

/// One decision about one event, as stored with the event and shown by the admin API.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Build {
        build_id: String,
        job: String,
        sha: String,
        #[serde(rename = "ref")]
        git_ref: String,
        status_name: String,
    },
    Skip {
        reason: String,
    },
}

fn skip(reason: impl Into<String>) -> (Vec<NewBuild>, Vec<Decision>) {
    (
        Vec::new(),
        vec![Decision::Skip {
            reason: reason.into(),
        }],
    )
}

#[derive(serde::Deserialize)]
struct Payload {
    event_id: String,
}

pub(super) async fn run(services: &Services, job: &ClaimedJob) -> Result<Outcome, JobError> {
    let payload: Payload = serde_json::from_str(&job.payload)
        .map_err(|e| JobError::Invalid(format!("process_event payload: {e}")))?;
    let event_id = payload.event_id;
    let store = &services.store;
    let Some((kind, body)) = store.event_body(&event_id).await? else {
        return Err(JobError::Invalid(format!("event {event_id} is not stored")));
    };
    let (builds, decisions) = match decide(&services.config, &event_id, &kind, &body) {
        Ok(plan) => plan,
        Err(reason) => skip(reason),
    };
    for decision in &decisions {
        match decision {
            Decision::Build {
                build_id, job, sha, ..
            } => {
                tracing::info!(event = %event_id, build = %build_id, %job, %sha, "planned a build")
            }
            Decision::Skip { reason } => {
                tracing::info!(event = %event_id, %reason, "builds nothing")
            }
        }
    }
    // Merge requests and pushes also feed the audit trail (approvals, merges, pushes past
    // review), in order per project.
    let audit = matches!(kind.as_str(), "merge_request" | "push").then(|| {
        let payload = serde_json::json!({ "event_id": event_id }).to_string();
        NewJob::now(JobKind::Audit, payload).ordered(format!("audit:{}", project_of(&body)))
    });
    record(store, job, &event_id, &builds, &decisions, audit.as_ref()).await?;
    Ok(Outcome::Done)
}

/// Stores the builds, their statuses and trigger jobs, the decisions, and finishes the
/// job, all in one transaction: an event is planned exactly once.
async fn record(
    store: &Store,
    job: &ClaimedJob,
    event_id: &str,
    builds: &[NewBuild],
    decisions: &[Decision],
    audit: Option<&NewJob>,
) -> sqlx::Result<()> {
    let outcome = serde_json::json!({ "decisions": decisions }).to_string();
    let mut tx = store.pool().begin().await?;
    insert_builds(&mut tx, builds).await?;
    let mut triggers = Vec::with_capacity(builds.len());
    for build in builds {
        let key = StatusKey {
            project_id: build.gitlab_project_id,
            sha: build.sha.clone(),
            name: build.status_name.clone(),
        };
        start_generation(&mut tx, &key, &build.git_ref, &build.id).await?;
        let payload = serde_json::json!({ "build_id": build.id }).to_string();
        triggers
            .push(NewJob::now(JobKind::Trigger, payload).unique(format!("trigger:{}", build.id)));
    }
    if let Some(audit) = audit {
        triggers.push(audit.clone());
    }
    insert_jobs(&mut tx, &triggers.iter().collect::<Vec<_>>()).await?;
    sqlx::query("UPDATE events SET processed_at = $1, outcome = $2 WHERE id = $3")
        .bind(crate::store::now_ms())
        .bind(outcome)
        .bind(event_id)
        .execute(&mut *tx)
        .await?;
    Store::complete_in(&mut tx, job).await?;
    tx.commit().await?;
    if !builds.is_empty() {
        store.wake_workers();
    }
    Ok(())
}

/// The builds an event asks for. `Err` is a reason to build nothing.
fn decide(
    config: &Config,
    event_id: &str,
    kind: &str,
    body: &[u8],
) -> Result<(Vec<NewBuild>, Vec<Decision>), String> {
    let kind = EventKind::from_stored(kind);
    let event = GitLabEvent::parse(kind, body).map_err(|e| format!("payload: {e}"))?;
    let routing = crate::gitlab::events::routing(body).map_err(|e| e.to_string())?;
    let path = routing.project_path.ok_or("payload names no project")?;
    let project = config
        .project(&path)
        .ok_or_else(|| format!("project {path} is no longer configured"))?;
    match event {
        GitLabEvent::Push(push) => Ok(plan_push(project, event_id, &push)),
        GitLabEvent::MergeRequest(mr) => Ok(plan_merge_request(project, event_id, &mr)),
        GitLabEvent::TagPush(_) => Err("tag pushes do not build".into()),
        GitLabEvent::Note(_) => Err("comments do not build".into()),
        GitLabEvent::Other => Err(format!("{} events do not build", kind.as_str())),
    }
}

fn plan_push(
    project: &ProjectConfig,
    event_id: &str,
    push: &PushEvent,
) -> (Vec<NewBuild>, Vec<Decision>) {
    let Some(branch) = push.branch() else {
        return skip(format!("ref {} is not a branch", push.git_ref));
    };
    if push.is_deletion() {
        return skip(format!("branch {branch} was deleted"));
    }
    let Some(project_id) = push.project_id() else {
        return skip("payload has no project id");
    };
    let build_id = new_build_id();
    let params = params::for_push(&build_id, push, branch);
    one_build(
        project,
        event_id,
        build_id,
        project_id as i64,
        &push.after,
        branch,
        params,
        None,
    )
}

fn plan_merge_request(
    project: &ProjectConfig,
    event_id: &str,
    mr: &MergeRequestEvent,
) -> (Vec<NewBuild>, Vec<Decision>) {
    let attrs = &mr.object_attributes;
    if !mr.brings_new_code() {
        return skip(match mr.action() {
            "update" => "merge request updated without new commits".to_owned(),
            "" => "merge request event without an action".to_owned(),
            action => format!("merge request action '{action}' does not build"),
        });
    }
    let Some(sha) = attrs.last_commit.as_ref().map(|c| c.id.clone()) else {
        return skip("merge request has no last commit");
    };
    let build_id = new_build_id();
    let params = params::for_merge_request(&build_id, mr, &sha);
    // Statuses go where GitLab's merge-request widget looks: the source project and branch.
    one_build(
        project,
        event_id,
        build_id,
        attrs.source_project_id as i64,
        &sha,
        &attrs.source_branch,
        params,
        Some(attrs.iid as i64),
    )
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site per event kind, each argument named there"
)]
fn one_build(
    project: &ProjectConfig,
    event_id: &str,
    build_id: String,
    gitlab_project_id: i64,
    sha: &str,
    git_ref: &str,
    params: params::Params,
    mr_iid: Option<i64>,
) -> (Vec<NewBuild>, Vec<Decision>) {
    let decision = Decision::Build {
        build_id: build_id.clone(),
        job: project.job.clone(),
        sha: sha.to_owned(),
        git_ref: git_ref.to_owned(),
        status_name: project.status_name.clone(),
    };
    let build = NewBuild {
        id: build_id,
        event_id: event_id.to_owned(),
        project_path: project.gitlab.clone(),
        gitlab_project_id,
        sha: sha.to_owned(),
        git_ref: git_ref.to_owned(),
        status_name: project.status_name.clone(),
        job_name: project.job.clone(),
        params,
        mr_iid,
    };
    (vec![build], vec![decision])
}

fn project_of(body: &[u8]) -> String {
    crate::gitlab::events::routing(body)
        .ok()
        .and_then(|r| r.project_path)
        .unwrap_or_default()
}

fn new_build_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
