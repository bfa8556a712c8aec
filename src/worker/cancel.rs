//! Cancelling a build nobody wants any more: a newer commit superseded it, or its merge
//! request was closed or merged. Its queue item is cancelled (and, when configured, a
//! running build stopped), and its status ends `canceled` saying why.

use super::{describe, JobError, Outcome, Services};
use crate::{
    jenkins::QueueState,
    store::{
        builds_tx, statuses_tx::advance, Build, BuildState, ClaimedJob, StatusKey, StatusStage,
        Store,
    },
};

#[derive(serde::Deserialize)]
struct Payload {
    build_id: String,
    reason: String,
    #[serde(default)]
    stop: bool,
}

pub(super) async fn run(services: &Services, job: &ClaimedJob) -> Result<Outcome, JobError> {
    let payload: Payload = serde_json::from_str(&job.payload)
        .map_err(|e| JobError::Invalid(format!("cancel payload: {e}")))?;
    let store = &services.store;
    let Some(build) = store.build(&payload.build_id).await? else {
        return Err(JobError::Invalid(format!(
            "build {} is not stored",
            payload.build_id
        )));
    };
    // A running build that is not to be stopped finishes and reports as usual.
    let running = build.state == BuildState::Running;
    if build.state.is_final() || (running && !payload.stop) {
        store.complete(job).await?;
        return Ok(Outcome::Done);
    }
    // Record first, so that the tracker, seeing the queue item cancelled, finds the build
    // already ended with this reason; then tell Jenkins. A retry after a failed Jenkins call
    // finds the build abandoned and only repeats the call.
    abandon(store, &services.config, &build, &payload.reason).await?;
    let jenkins = &services.jenkins;
    match (build.build_number, build.queue_id) {
        (Some(number), _) => stop(services, &build, number, payload.stop).await?,
        (None, Some(queue_id)) => {
            if !jenkins.cancel_queue_item(queue_id).await? {
                // It left the queue meanwhile: it runs now, or Jenkins forgot it.
                if let QueueState::Started { number } = jenkins.queue_item(queue_id).await? {
                    stop(services, &build, number, payload.stop).await?;
                }
            }
        }
        // Not in Jenkins yet: the trigger finds the build abandoned and sends nothing, or
        // cancels the queue item it just got.
        (None, None) => {}
    }
    tracing::info!(build = %build.id, reason = %payload.reason, "build cancelled");
    store.complete(job).await?;
    Ok(Outcome::Done)
}

/// Stops a running build when asked to; otherwise it is left to finish and report.
async fn stop(
    services: &Services,
    build: &Build,
    number: i64,
    stop_running: bool,
) -> Result<(), JobError> {
    if stop_running {
        services.jenkins.stop_build(&build.job_name, number).await?;
    }
    Ok(())
}

async fn abandon(
    store: &Store,
    config: &crate::config::Config,
    build: &Build,
    reason: &str,
) -> sqlx::Result<()> {
    let url = match build.build_number {
        Some(number) => describe::build_link(config, &build.job_name, number),
        None => describe::job_link(config, &build.job_name),
    };
    let stage = StatusStage::Final {
        state: "canceled",
        description: reason.to_owned(),
        url,
    };
    let mut tx = store.begin().await?;
    if builds_tx::abandoned(&mut tx, &build.id, reason).await? {
        advance(&mut tx, &StatusKey::of(build), &build.id, &stage).await?;
    }
    tx.commit().await?;
    store.wake_workers();
    Ok(())
}
