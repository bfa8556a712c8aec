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
        builds_tx, insert_builds, insert_jobs, statuses_tx::start_generation, Build, ClaimedJob,
        JobKind, NewBuild, NewJob, StatusKey, Store,
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
    let (project, plan) = match rules::decide(&services.config, &kind, &body) {
        Ok((project, plan)) => (Some(project), plan),
        Err(reason) => (
            None,
            Plan {
                skip: Some(reason),
                ..Plan::default()
            },
        ),
    };

    // Merge requests and pushes also feed the audit trail (approvals, merges, pushes past
    // review), in order per project.
    let audit = match (kind.as_str(), project) {
        ("merge_request" | "push", Some(project)) => {
            let payload = serde_json::json!({ "event_id": event_id }).to_string();
            Some(NewJob::now(JobKind::Audit, payload).ordered(format!("audit:{}", project.gitlab)))
        }
        _ => None,
    };
    let decisions = record(store, job, &event_id, project, &plan, audit.as_ref()).await?;
    for decision in &decisions {
        tracing::info!(event = %event_id, decision = %serde_json::to_string(decision).unwrap_or_default(), "planned");
    }
    store.wake_workers();
    Ok(Outcome::Done)
}

/// Applies a plan in one transaction: an event is planned exactly once.
async fn record(
    store: &Store,
    job: &ClaimedJob,
    event_id: &str,
    project: Option<&ProjectConfig>,
    plan: &Plan,
    audit: Option<&NewJob>,
) -> sqlx::Result<Vec<Decision>> {
    let mut decisions = Vec::new();
    let mut jobs = Vec::new();
    let mut tx = store.begin().await?;

    if let (Some(project), Some((lineage, reason))) = (project, &plan.cancel) {
        for build in builds_tx::active(&mut tx, &project.gitlab, None, lineage).await? {
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
            if let Some(existing) = duplicate_of(&mut tx, &project.gitlab, request).await? {
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
                    &mut tx,
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
            plan_build(&mut tx, event_id, project, request, &mut jobs).await?;
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
    jobs.extend(audit.cloned());
    insert_jobs(&mut tx, &jobs.iter().collect::<Vec<_>>()).await?;
    let outcome = serde_json::json!({ "decisions": decisions }).to_string();
    sqlx::query("UPDATE events SET processed_at = $1, outcome = $2 WHERE id = $3")
        .bind(crate::store::now_ms())
        .bind(outcome)
        .bind(event_id)
        .execute(&mut *tx)
        .await?;
    Store::complete_in(&mut tx, job).await?;
    tx.commit().await?;
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
