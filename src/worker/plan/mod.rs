//! Planning: what a received GitLab event builds, decided once per event and recorded
//! with its reason, so "why did this not build?" always has an answer.
//!
//! The rules are in [`rules`]; here the decision is applied in one transaction: one build
//! per (project, sha, job) — a push and the merge-request update for the same commit make
//! one build — and older builds of the same branch or merge request are superseded.

mod rules;

use serde::Serialize;

use rules::{BuildRequest, Plan};

use super::{JobError, Outcome, Services};
use crate::{
    config::ProjectConfig,
    store::{
        audit_job, builds_tx, insert_builds, insert_jobs, statuses_tx::start_generation, Build,
        ClaimedJob, JobKind, NewBuild, NewJob, PendingEvent, StatusKey,
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
    /// The commit is already being built for this job.
    Deduplicated {
        build_id: String,
        event_id: String,
        status_name: String,
        reason: String,
    },
    /// An older build is cancelled.
    Cancel {
        build_id: String,
        sha: String,
        reason: String,
    },
    Skip {
        reason: String,
    },
}

/// Events planned per run of a project's planning job; then the job yields to others
/// and continues. Bounds one run's time without a transaction per event, and how long a
/// run holds SQLite's write lock while webhooks wait for it: at a fixed 2,000 webhooks a
/// second their p99 was 16 ms with 64, 4.6 ms with 8, and a burst drained as fast.
const EVENTS_PER_RUN: i64 = 8;

#[derive(serde::Deserialize)]
struct Payload {
    project: String,
}

/// Plans the project's waiting events, oldest first.
pub(super) async fn run(services: &Services, job: &ClaimedJob) -> Result<Outcome, JobError> {
    let payload: Payload = serde_json::from_str(&job.payload)
        .map_err(|e| JobError::Invalid(format!("process_event payload: {e}")))?;
    let store = &services.store;
    let events = store
        .unplanned_events(&payload.project, EVENTS_PER_RUN)
        .await?;
    // One transaction for the whole batch: one commit (one fsync) however many events
    // arrived together, and each event still sees the builds the ones before it planned.
    let mut tx = store.begin().await?;
    let mut queued = false;
    for event in &events {
        queued |= plan_one(services, &mut tx, event).await?;
    }
    if !events.is_empty() {
        // The audit trail follows, in the same order (approvals before the merge), queued
        // in the same commit as the plans.
        insert_jobs(&mut tx, &[&audit_job(&payload.project)]).await?;
        queued = true;
    }
    tx.commit().await?;
    if queued {
        store.wake_workers();
    }
    if events.len() as i64 == EVENTS_PER_RUN {
        return Ok(Outcome::Again(crate::store::now_ms()));
    }
    store.complete(job).await?;
    Ok(Outcome::Done)
}

/// Plans one event inside the batch's transaction; true when it queued jobs.
async fn plan_one(
    services: &Services,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    event: &PendingEvent,
) -> Result<bool, JobError> {
    let (project, plan) = match rules::decide(&services.config, &event.kind, &event.body) {
        Ok((project, plan)) => (Some(project), plan),
        Err(reason) => (
            None,
            Plan {
                skip: Some(reason),
                ..Plan::default()
            },
        ),
    };
    let decisions = record(tx, &event.id, project, &plan).await?;
    let mut queued = false;
    for decision in &decisions {
        queued |= matches!(decision, Decision::Build { .. } | Decision::Cancel { .. });
        let text = serde_json::to_string(decision).unwrap_or_default();
        tracing::info!(event = %event.id, decision = %text, "planned");
    }
    Ok(queued)
}

/// Applies a plan inside the caller's transaction: an event is planned exactly once.
async fn record(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    event_id: &str,
    project: Option<&ProjectConfig>,
    plan: &Plan,
) -> sqlx::Result<Vec<Decision>> {
    let mut decisions = Vec::new();
    let mut jobs = Vec::new();

    if let (Some(project), Some((lineage, reason))) = (project, &plan.cancel) {
        for build in builds_tx::active(tx, &project.gitlab, None, lineage).await? {
            jobs.push(cancel_job(&build, reason, project.triggers.stop_superseded));
            decisions.push(Decision::Cancel {
                build_id: build.id,
                sha: build.sha,
                reason: reason.clone(),
            });
        }
    }
    if let Some(project) = project {
        for request in &plan.builds {
            if let Some(existing) = duplicate_of(tx, &project.gitlab, request).await? {
                decisions.push(Decision::Deduplicated {
                    reason: format!(
                        "commit {} is already built for {} by event {}",
                        short(&request.sha),
                        request.status_name,
                        existing.event_id
                    ),
                    build_id: existing.id,
                    event_id: existing.event_id,
                    status_name: request.status_name.clone(),
                });
                continue;
            }
            if project.triggers.cancel_superseded {
                let older = builds_tx::active(
                    tx,
                    &project.gitlab,
                    Some(&request.status_name),
                    &request.lineage,
                )
                .await?;
                for build in older.into_iter().filter(|b| b.sha != request.sha) {
                    let reason = format!("superseded by {}", short(&request.sha));
                    jobs.push(cancel_job(
                        &build,
                        &reason,
                        project.triggers.stop_superseded,
                    ));
                    decisions.push(Decision::Cancel {
                        build_id: build.id,
                        sha: build.sha,
                        reason,
                    });
                }
            }
            plan_build(tx, event_id, project, request, &mut jobs).await?;
            decisions.push(Decision::Build {
                build_id: request.id.clone(),
                job: request.job_name.clone(),
                sha: request.sha.clone(),
                git_ref: request.git_ref.clone(),
                status_name: request.status_name.clone(),
            });
        }
    }
    if let Some(reason) = &plan.skip {
        decisions.push(Decision::Skip {
            reason: reason.clone(),
        });
    }
    if decisions.is_empty() {
        decisions.push(Decision::Skip {
            reason: "nothing to build".into(),
        });
    }
    insert_jobs(tx, &jobs.iter().collect::<Vec<_>>()).await?;
    let outcome = serde_json::json!({ "decisions": decisions }).to_string();
    sqlx::query(
        "UPDATE events SET processed_at = $1, outcome = $2 WHERE id = $3 AND processed_at IS NULL",
    )
    .bind(crate::store::now_ms())
    .bind(outcome)
    .bind(event_id)
    .execute(&mut **tx)
    .await?;
    Ok(decisions)
}

/// An existing build that already serves this request: same commit and status, and the
/// same merge-request target (a push serves any merge request of its branch and the other
/// way round; two merge requests into different targets are two builds).
async fn duplicate_of(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    project_path: &str,
    request: &BuildRequest,
) -> sqlx::Result<Option<Build>> {
    if request.forced {
        return Ok(None);
    }
    let existing = builds_tx::for_sha(tx, project_path, &request.sha, &request.status_name).await?;
    Ok(existing.into_iter().find(|build| {
        let target = build
            .mr_iid
            .and(build.params.get("gitlabTargetBranch").cloned());
        match (&target, &request.target_branch) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }))
}

async fn plan_build(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    event_id: &str,
    project: &ProjectConfig,
    request: &BuildRequest,
    jobs: &mut Vec<NewJob>,
) -> sqlx::Result<()> {
    let build = NewBuild {
        id: request.id.clone(),
        event_id: event_id.to_owned(),
        project_path: project.gitlab.clone(),
        gitlab_project_id: request.gitlab_project_id,
        sha: request.sha.clone(),
        git_ref: request.git_ref.clone(),
        status_name: request.status_name.clone(),
        job_name: request.job_name.clone(),
        params: request.params.clone(),
        mr_iid: request.mr_iid,
    };
    insert_builds(tx, std::slice::from_ref(&build)).await?;
    let key = StatusKey {
        project_id: build.gitlab_project_id,
        sha: build.sha.clone(),
        name: build.status_name.clone(),
    };
    start_generation(tx, &key, &build.git_ref, &build.id).await?;
    let payload = serde_json::json!({ "build_id": build.id }).to_string();
    jobs.push(NewJob::now(JobKind::Trigger, payload).unique(format!("trigger:{}", build.id)));
    Ok(())
}

fn cancel_job(build: &Build, reason: &str, stop_running: bool) -> NewJob {
    let payload =
        serde_json::json!({ "build_id": build.id, "reason": reason, "stop": stop_running })
            .to_string();
    NewJob::now(JobKind::Cancel, payload).unique(format!("cancel:{}", build.id))
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(8)]
}
