//! The workers: they claim jobs from the database queue and carry them out.
//!
//! Nothing is done inside a webhook request; everything an event causes happens here,
//! from the queue, so it survives restarts and can be shared by replicas.

mod cancel;
mod describe;
mod finish;
mod plan;
mod post_status;
mod track;
mod trigger;

use std::{sync::Arc, time::Duration};

use rand::Rng;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    config::Config,
    gitlab::GitLabClient,
    jenkins::JenkinsClient,
    metrics::Metrics,
    outbound::CallError,
    store::{now_ms, ClaimedJob, JobKind, Store},
};

pub use finish::{finish_build, FinishOutcome};

/// First retry delay of a failed job, in ms; it doubles with every further failure.
pub const RETRY_BASE_MS: i64 = 1_000;
/// Longest delay between two retries, in ms.
pub const RETRY_MAX_DELAY_MS: i64 = 5 * 60 * 1_000;
/// Attempts before a job gives up and becomes a dead letter. With the delays above that
/// is about 40 minutes of retrying: long enough to ride out a Jenkins or GitLab restart.
pub const MAX_ATTEMPTS: i64 = 16;
/// How long an idle worker sleeps at most before looking at the queue again, in ms, when
/// nothing woke it (a job enqueued by another replica, a lease that ran out).
const IDLE_POLL_MS: i64 = 1_000;

/// Everything a job may use.
pub struct Services {
    pub config: Arc<Config>,
    pub store: Store,
    pub gitlab: GitLabClient,
    pub jenkins: JenkinsClient,
    pub metrics: Arc<Metrics>,
}

/// What a job asks for when it did not fail.
pub enum Outcome {
    /// Finished (the job already removed itself, in its own transaction).
    Done,
    /// Look again at this time (polling); not a failure.
    Again(i64),
}

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Invalid(String),
}

impl JobError {
    fn retryable(&self) -> bool {
        match self {
            Self::Call(call) => call.is_transient(),
            Self::Database(_) => true,
            Self::Invalid(_) => false,
        }
    }
}

/// Delay before retry number `attempts` (1 = the first retry), with ±25 % jitter so that
/// jobs that failed together do not retry together.
pub fn retry_delay_ms(attempts: i64) -> i64 {
    let exponent = (attempts - 1).clamp(0, 20) as u32;
    let delay = (RETRY_BASE_MS.saturating_mul(1 << exponent)).min(RETRY_MAX_DELAY_MS);
    let jitter = rand::thread_rng().gen_range(-delay / 4..=delay / 4);
    delay + jitter
}

/// Starts `config.worker.concurrency` workers; they stop claiming once `shutdown` fires and
/// end after their current job.
pub fn spawn(services: Arc<Services>, shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
    let owner = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
    (0..services.config.worker.concurrency)
        .map(|index| {
            let services = services.clone();
            let shutdown = shutdown.clone();
            let owner = format!("{owner}/{index}");
            tokio::spawn(async move { run_worker(services, shutdown, owner).await })
        })
        .collect()
}

async fn run_worker(services: Arc<Services>, shutdown: CancellationToken, owner: String) {
    let lease_ms = services.config.worker.lease.as_millis() as i64;
    let ready = services.store.jobs_ready();
    while !shutdown.is_cancelled() {
        // Register interest before looking, so a wake-up between the look and the wait
        // is not missed.
        let notified = ready.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        give_way_to_webhooks(&services.store).await;
        match services.store.claim(&owner, lease_ms).await {
            Ok(Some(job)) => {
                // There may be more: let another worker look while this one works.
                ready.notify_one();
                run_job(&services, job).await;
                continue;
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "could not claim a job"),
        }
        let due = services.store.next_due_in().await.ok().flatten();
        let sleep_ms = due.unwrap_or(IDLE_POLL_MS).clamp(1, IDLE_POLL_MS) as u64;
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep(Duration::from_millis(sleep_ms)) => {}
            _ = shutdown.cancelled() => {}
        }
    }
}

/// Longest a worker waits for webhooks to be committed before it claims a job anyway, in
/// ms. Answering GitLab within its timeout comes first; work deferred this way runs in the
/// next lull, and never waits longer than this per job.
const GIVE_WAY_MAX_MS: u64 = 200;
/// How often a waiting worker looks again, in ms.
const GIVE_WAY_STEP_MS: u64 = 20;

/// Waits while webhooks in this process wait for their commit, so the workers' writes do not
/// hold SQLite's one write lock (or PostgreSQL connections) while GitLab waits for answers.
async fn give_way_to_webhooks(store: &Store) {
    let mut waited = 0;
    while store.ingest_pending() > 0 && waited < GIVE_WAY_MAX_MS {
        tokio::time::sleep(Duration::from_millis(GIVE_WAY_STEP_MS)).await;
        waited += GIVE_WAY_STEP_MS;
    }
}

async fn run_job(services: &Services, job: ClaimedJob) {
    let span = tracing::info_span!("job", id = job.id, kind = %job.kind, attempt = job.attempts);
    async {
        let started = std::time::Instant::now();
        let result = with_lease_renewed(services, &job, dispatch(services, &job)).await;
        services
            .metrics
            .job_finished(&job.kind, result.is_ok(), started.elapsed());
        let store = &services.store;
        let saved = match result {
            Ok(Outcome::Done) => Ok(()),
            Ok(Outcome::Again(at)) => store.reschedule(&job, at, None, false).await,
            Err(error) if error.retryable() && job.attempts < MAX_ATTEMPTS => {
                let retry_after = match &error {
                    JobError::Call(call) => call.retry_after().map(|d| d.as_millis() as i64),
                    _ => None,
                };
                let delay = retry_after.unwrap_or(0).max(retry_delay_ms(job.attempts));
                tracing::warn!(%error, delay_ms = delay, "job failed; will retry");
                services.metrics.job_retried(&job.kind);
                store
                    .reschedule(&job, now_ms() + delay, Some(&error.to_string()), true)
                    .await
            }
            Err(error) => {
                tracing::error!(%error, "job gave up; kept as a dead letter");
                services.metrics.job_dead(&job.kind);
                store.bury(&job, &error.to_string()).await
            }
        };
        if let Err(error) = saved {
            // The lease runs out and another worker takes the job again.
            tracing::error!(%error, "could not record the job's outcome");
        }
    }
    .instrument(span)
    .await
}

/// Runs `work` while renewing the job's lease every third of its length, so a job that
/// takes longer than its lease (a slow Jenkins) is never taken over by another worker. A
/// lease lost anyway (the process stalled) is logged; the owner checks in the queue then
/// keep this worker from finishing a job another one holds.
async fn with_lease_renewed<T>(
    services: &Services,
    job: &ClaimedJob,
    work: impl std::future::Future<Output = T>,
) -> T {
    let lease_ms = services.config.worker.lease.as_millis() as i64;
    let period = Duration::from_millis((lease_ms / 3).max(1) as u64);
    tokio::pin!(work);
    loop {
        tokio::select! {
            result = &mut work => return result,
            _ = tokio::time::sleep(period) => {
                match services.store.renew_lease(job, lease_ms).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!("lost the lease of a running job"),
                    Err(error) => tracing::warn!(%error, "could not renew a job's lease"),
                }
            }
        }
    }
}

async fn dispatch(services: &Services, job: &ClaimedJob) -> Result<Outcome, JobError> {
    match JobKind::parse(&job.kind) {
        Some(JobKind::ProcessEvent) => plan::run(services, job).await,
        Some(JobKind::Trigger) => trigger::run(services, job).await,
        Some(JobKind::Track) => track::run(services, job).await,
        Some(JobKind::PostStatus) => post_status::run(services, job).await,
        Some(JobKind::Cancel) => cancel::run(services, job).await,
        Some(JobKind::Audit) => crate::audit::run(services, job).await,
        Some(JobKind::QualityResult) => crate::audit::quality::run(services, job).await,
        Some(JobKind::MrCheck) => crate::audit::mr_check::run(services, job).await,
        Some(JobKind::MrNote) => crate::audit::note::run(services, job).await,
        Some(JobKind::ComplianceCheck) => crate::audit::schedule::run(services, job).await,
        None => Err(JobError::Invalid(format!("unknown job kind {}", job.kind))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_with_jitter_and_stay_under_the_cap() {
        for attempts in 1..=MAX_ATTEMPTS {
            let nominal = (RETRY_BASE_MS << (attempts - 1).min(20)).min(RETRY_MAX_DELAY_MS);
            let delay = retry_delay_ms(attempts);
            assert!(
                delay >= nominal - nominal / 4 && delay <= nominal + nominal / 4,
                "{attempts}: {delay}"
            );
        }
        assert!(retry_delay_ms(100) <= RETRY_MAX_DELAY_MS + RETRY_MAX_DELAY_MS / 4);
    }
}
