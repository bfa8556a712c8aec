//! Starting a Jenkins build for a planned build, exactly once.
//!
//! A trigger whose outcome is unknown (the process died after sending it, or the answer
//! was lost) is never simply sent again: the build is first looked up in Jenkins by its
//! `CI_BRIDGE_BUILD_ID`.

use super::{describe, JobError, Outcome, Services};
use crate::{
    jenkins::{client::Found, Triggered},
    outbound::CallError,
    store::{
        builds_tx, insert_jobs, statuses_tx::advance, Build, BuildState, ClaimedJob, StatusKey,
        StatusStage, Store,
    },
};

/// True when the build's job comes from a `{branch}`/`{mr}` template.
fn is_branch_job(services: &Services, build: &Build) -> bool {
    services
        .config
        .project(&build.project_path)
        .and_then(|project| {
            project
                .all_jobs()
                .into_iter()
                .find(|job| job.status_name == build.status_name)
        })
        .is_some_and(|job| job.job.contains('{'))
}

/// A branch job that is missing may still be created by indexing.
fn branch_job_may_appear(services: &Services, build: &Build, job: &ClaimedJob) -> bool {
    let wait_ms = services.config.jenkins.branch_job_wait.as_millis() as i64;
    is_branch_job(services, build) && crate::store::now_ms() - job.created_at < wait_ms
}

#[derive(serde::Deserialize)]
pub(super) struct Payload {
    pub build_id: String,
}

pub(super) async fn run(services: &Services, job: &ClaimedJob) -> Result<Outcome, JobError> {
    let payload: Payload = serde_json::from_str(&job.payload)
        .map_err(|e| JobError::Invalid(format!("trigger payload: {e}")))?;
    let store = &services.store;
    let Some(build) = store.build(&payload.build_id).await? else {
        return Err(JobError::Invalid(format!(
            "build {} is not stored",
            payload.build_id
        )));
    };
    if build.state != BuildState::Planned {
        store.complete(job).await?;
        return Ok(Outcome::Done);
    }

    // Any earlier attempt may have reached Jenkins.
    if job.attempts > 1 {
        match services
            .jenkins
            .find(&build.job_name, &build.id, search_since(&build))
            .await
        {
            Ok(Some(found)) => {
                tracing::info!(build = %build.id, ?found, "an earlier trigger reached Jenkins");
                let (queue_id, number) = match found {
                    Found::Queued(id) => (Some(id), None),
                    Found::Run(number) => (None, Some(number)),
                };
                queued(services, job, &build, queue_id, number, false).await?;
                return Ok(Outcome::Done);
            }
            Ok(None) => {}
            Err(error) if error.is_transient() => return Err(error.into()),
            // A permanent error (the job is gone) is reported by the trigger below.
            Err(_) => {}
        }
    }

    let params: Vec<(String, String)> = build.params.clone().into_iter().collect();
    let started = std::time::Instant::now();
    let answer = services.jenkins.trigger(&build.job_name, &params).await;
    services
        .metrics
        .outbound("jenkins", "trigger", answer.is_ok(), started.elapsed());
    match answer {
        Ok(Triggered::Queued(queue_id)) if job.attempts > 1 => {
            // Jenkins is back after failing: the other triggers waiting for a retry go now,
            // oldest first, rather than whenever their backoff ends.
            queued(services, job, &build, Some(queue_id), None, false).await?;
            services
                .store
                .retry_now(crate::store::JobKind::Trigger)
                .await?;
        }
        Ok(Triggered::Queued(queue_id)) => {
            tracing::info!(build = %build.id, job = %build.job_name, queue_id, "Jenkins queued the build");
            queued(services, job, &build, Some(queue_id), None, false).await?;
        }
        Ok(Triggered::Merged(queue_id)) => {
            tracing::warn!(
                build = %build.id, job = %build.job_name, queue_id,
                "Jenkins merged the trigger into an item already queued; does the job define CI_BRIDGE_BUILD_ID?"
            );
            queued(services, job, &build, Some(queue_id), None, true).await?;
        }
        Err(error) if error.is_transient() && job.attempts < super::MAX_ATTEMPTS => {
            return Err(error.into())
        }
        Err(error)
            if error.status() == Some(404) && branch_job_may_appear(services, &build, job) =>
        {
            // A multibranch project creates a branch's job only when it indexes the branch.
            if job.attempts == 1 {
                if let Some((parent, _)) = build.job_name.rsplit_once('/') {
                    let _ = services.jenkins.scan_multibranch(parent).await;
                }
            }
            tracing::info!(build = %build.id, job = %build.job_name, "branch job not there yet; will retry");
            return Err(JobError::Call(CallError::Transient(
                format!("Jenkins has no job {} yet", build.job_name),
                None,
            )));
        }
        Err(error) if error.status() == Some(404) && is_branch_job(services, &build) => {
            let waited =
                describe::duration(services.config.jenkins.branch_job_wait.as_millis() as i64);
            let description = format!(
                "Jenkins has no job {} (not indexed within {waited}; is the branch discovered?)",
                build.job_name
            );
            tracing::error!(build = %build.id, job = %build.job_name, "branch job never appeared");
            refused(services, job, &build, &description, true).await?;
        }
        Err(error) => {
            let description = if error.is_transient() {
                format!("could not reach Jenkins: {error}")
            } else {
                describe::refused(&build.job_name, &error)
            };
            tracing::error!(build = %build.id, job = %build.job_name, %error, "Jenkins did not take the build");
            // A trigger that gave up stays as a dead letter; a refused one is done.
            let gave_up = error.is_transient();
            refused(services, job, &build, &description, !gave_up).await?;
            if gave_up {
                return Err(JobError::Call(CallError::Permanent(description, None)));
            }
        }
    }
    Ok(Outcome::Done)
}

/// Records the queue item, posts `pending`, and starts tracking, in one transaction.
async fn queued(
    services: &Services,
    job: &ClaimedJob,
    build: &Build,
    queue_id: Option<i64>,
    run_number: Option<i64>,
    merged: bool,
) -> sqlx::Result<()> {
    let config = &services.config;
    let description = if merged {
        "queued in Jenkins (merged with an identical queued trigger)"
    } else {
        "queued in Jenkins"
    };
    let key = StatusKey::of(build);
    let mut tx = services.store.begin().await?;
    if !builds_tx::queued(&mut tx, &build.id, queue_id, description).await? {
        // Cancelled while the trigger was on its way: take the item out of the queue again.
        Store::complete_in(&mut tx, job).await?;
        tx.commit().await?;
        if let Some(queue_id) = queue_id {
            if let Err(error) = services.jenkins.cancel_queue_item(queue_id).await {
                tracing::warn!(build = %build.id, queue_id, %error, "could not cancel the queue item of a cancelled build");
            }
        }
        return Ok(());
    }
    let pending = StatusStage::Pending {
        description: description.to_owned(),
        url: describe::job_link(config, &build.job_name),
    };
    advance(&mut tx, &key, &build.id, &pending).await?;
    if let Some(number) = run_number {
        builds_tx::running(&mut tx, &build.id, number).await?;
    }
    let track = super::track::job_for(&build.id);
    insert_jobs(&mut tx, &[&track]).await?;
    Store::complete_in(&mut tx, job).await?;
    tx.commit().await?;
    services.store.wake_workers();
    Ok(())
}

/// Jenkins will not build it: the status ends `failed`, saying why.
async fn refused(
    services: &Services,
    job: &ClaimedJob,
    build: &Build,
    description: &str,
    complete: bool,
) -> sqlx::Result<()> {
    let key = StatusKey::of(build);
    let mut tx = services.store.begin().await?;
    builds_tx::abandoned(&mut tx, &build.id, description).await?;
    let stage = StatusStage::Final {
        state: "failed",
        description: description.to_owned(),
        url: describe::job_link(&services.config, &build.job_name),
    };
    advance(&mut tx, &key, &build.id, &stage).await?;
    if complete {
        Store::complete_in(&mut tx, job).await?;
    }
    tx.commit().await?;
    services.store.wake_workers();
    Ok(())
}

/// How far back a search for a build goes: from a little before the build was planned
/// (ten minutes allow for Jenkins' clock being behind ours).
pub(super) fn search_since(build: &Build) -> i64 {
    const CLOCK_SLACK_MS: i64 = 10 * 60 * 1000;
    build.created_at - CLOCK_SLACK_MS
}
