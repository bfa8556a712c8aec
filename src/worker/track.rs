//! Following a build through the Jenkins queue to its result, by polling.
//!
//! The callback from the job's post-build step usually brings the result first; polling
//! makes sure it arrives without one, and that no status stays pending or running forever:
//! a build Jenkins cancelled or forgot, or one older than `jenkins.build_timeout`, ends
//! with a status that says so.

use super::{describe, finish_build, trigger::search_since, JobError, Outcome, Services};
use crate::{
    jenkins::{client::Found, QueueState},
    store::{
        builds_tx, now_ms, statuses_tx::advance, Build, BuildState, ClaimedJob, JobKind, NewJob,
        StatusKey, StatusStage, Store,
    },
};

pub(super) fn job_for(build_id: &str) -> NewJob {
    let payload = serde_json::json!({ "build_id": build_id }).to_string();
    NewJob::now(JobKind::Track, payload).unique(format!("track:{build_id}"))
}

pub(super) async fn run(services: &Services, job: &ClaimedJob) -> Result<Outcome, JobError> {
    let payload: super::trigger::Payload = serde_json::from_str(&job.payload)
        .map_err(|e| JobError::Invalid(format!("track payload: {e}")))?;
    let store = &services.store;
    let Some(mut build) = store.build(&payload.build_id).await? else {
        return Err(JobError::Invalid(format!(
            "build {} is not stored",
            payload.build_id
        )));
    };
    let poll_ms = services.config.jenkins.poll_interval.as_millis() as i64;
    let next = now_ms() + poll_ms;

    if build.state == BuildState::Queued {
        match queue_state(services, &build).await? {
            QueueState::Waiting { .. } => {
                if timed_out(services, &build) {
                    let waited = describe::duration(now_ms() - build.created_at);
                    abandon(
                        services,
                        job,
                        &build,
                        "failed",
                        &format!("still queued in Jenkins after {waited}"),
                    )
                    .await?;
                    return Ok(Outcome::Done);
                }
                return Ok(Outcome::Again(next));
            }
            QueueState::Cancelled => {
                abandon(
                    services,
                    job,
                    &build,
                    "canceled",
                    "cancelled in the Jenkins queue before it ran",
                )
                .await?;
                return Ok(Outcome::Done);
            }
            QueueState::Gone => {
                abandon(
                    services,
                    job,
                    &build,
                    "failed",
                    "Jenkins lost the queue item (restarted?) and has no build for it",
                )
                .await?;
                return Ok(Outcome::Done);
            }
            QueueState::Started { number } => {
                started(services, &build, number).await?;
                build.state = BuildState::Running;
                build.build_number = Some(number);
                build.started_at = Some(now_ms());
            }
        }
    }

    if build.state == BuildState::Running {
        let Some(number) = build.build_number else {
            return Err(JobError::Invalid(format!(
                "build {} runs without a number",
                build.id
            )));
        };
        match services.jenkins.run(&build.job_name, number).await? {
            Some(run) if !run.building => {
                let result = run.result.as_deref().unwrap_or("NOT_BUILT");
                finish_build(
                    store,
                    &services.config,
                    &build,
                    result,
                    Some(number),
                    Some(run.duration),
                )
                .await?;
            }
            Some(_) if timed_out(services, &build) => {
                let took = describe::duration(now_ms() - build.created_at);
                abandon(
                    services,
                    job,
                    &build,
                    "failed",
                    &format!("build #{number} still running after {took}"),
                )
                .await?;
                return Ok(Outcome::Done);
            }
            Some(_) => return Ok(Outcome::Again(next)),
            None => {
                let text = format!("Jenkins no longer knows build #{number}");
                abandon(services, job, &build, "failed", &text).await?;
                return Ok(Outcome::Done);
            }
        }
    }

    store.complete(job).await?;
    Ok(Outcome::Done)
}

fn timed_out(services: &Services, build: &Build) -> bool {
    let limit = services.config.jenkins.build_timeout.as_millis() as i64;
    now_ms() - build.created_at > limit
}

/// The queue item's state; when Jenkins forgot the item, or it was never known (a trigger
/// found only among the builds), the build is searched by its `CI_BRIDGE_BUILD_ID`.
async fn queue_state(services: &Services, build: &Build) -> Result<QueueState, JobError> {
    if let Some(queue_id) = build.queue_id {
        let state = services.jenkins.queue_item(queue_id).await?;
        if state != QueueState::Gone {
            return Ok(state);
        }
    }
    Ok(
        match services
            .jenkins
            .find(&build.job_name, &build.id, search_since(build))
            .await?
        {
            Some(Found::Run(number)) => QueueState::Started { number },
            Some(Found::Queued(_)) => QueueState::Waiting { why: None },
            None => QueueState::Gone,
        },
    )
}

/// The build left the queue: record its number and post `running`.
async fn started(services: &Services, build: &Build, number: i64) -> sqlx::Result<()> {
    let key = StatusKey::of(build);
    let stage = StatusStage::Running {
        description: format!("build #{number} running"),
        url: describe::build_link(&services.config, &build.job_name, number),
    };
    let mut tx = services.store.begin().await?;
    if builds_tx::running(&mut tx, &build.id, number).await? {
        advance(&mut tx, &key, &build.id, &stage).await?;
    }
    tx.commit().await?;
    services.store.wake_workers();
    tracing::info!(build = %build.id, number, "build started");
    Ok(())
}

/// The build will never report a result: end its status with `state` and the reason.
async fn abandon(
    services: &Services,
    job: &ClaimedJob,
    build: &Build,
    state: &'static str,
    reason: &str,
) -> sqlx::Result<()> {
    let key = StatusKey::of(build);
    let url = match build.build_number {
        Some(number) => describe::build_link(&services.config, &build.job_name, number),
        None => describe::job_link(&services.config, &build.job_name),
    };
    let stage = StatusStage::Final {
        state,
        description: reason.to_owned(),
        url,
    };
    let mut tx = services.store.begin().await?;
    if builds_tx::abandoned(&mut tx, &build.id, reason).await? {
        advance(&mut tx, &key, &build.id, &stage).await?;
    }
    Store::complete_in(&mut tx, job).await?;
    tx.commit().await?;
    services.store.wake_workers();
    tracing::warn!(build = %build.id, %reason, "build ended without a result");
    Ok(())
}
