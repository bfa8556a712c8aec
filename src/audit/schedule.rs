//! The scheduled compliance check: every `compliance.interval` (daily by default) it
//! builds the report of the time since the last delivered check and posts its deviations to
//! `compliance.webhook_url`. The job reschedules itself; [`seed`] queues its first run at
//! start when a webhook is configured (a restart does not postpone a due check).

use std::time::Duration;

use super::{formats, report};
use crate::{
    config::ComplianceConfig,
    outbound::{self, CallError},
    store::{now_ms, ClaimedJob, JobKind, NewJob, Store},
    worker::{JobError, Outcome, Services},
};

/// The queue key of the one scheduled check.
const JOB_KEY: &str = "compliance_check";

/// Queues the next check, one period from now, unless one is queued already.
pub async fn seed(store: &Store, compliance: &ComplianceConfig) -> sqlx::Result<()> {
    if compliance.webhook_url.is_none() {
        return Ok(());
    }
    let at = now_ms() + compliance.period().as_millis() as i64;
    let job = NewJob::now(JobKind::ComplianceCheck, "{}")
        .unique(JOB_KEY)
        .at(at);
    store.enqueue(&[job]).await
}

pub async fn run(services: &Services, job: &ClaimedJob) -> Result<Outcome, JobError> {
    let compliance = &services.config.compliance;
    let period = compliance.period();
    let next = now_ms() + period.as_millis() as i64;
    let Some(url) = &compliance.webhook_url else {
        services.store.complete(job).await?;
        return Ok(Outcome::Done);
    };
    // Each check covers the time since the last one delivered, so that no merge falls
    // between two checks however late one runs.
    let now = now_ms();
    let store = &services.store;
    let since = store
        .last_compliance_check()
        .await?
        .unwrap_or(now - period.as_millis() as i64);
    let window = (now - since).max(1);
    let label = humantime::format_duration(Duration::from_secs((window as u64 / 1000).max(1)));
    let report = report::build(store, window, &label.to_string()).await?;
    match post(url.expose(), &formats::webhook_message(&report)).await {
        Ok(()) => {
            let (merges, deviations) = (report.merges.len(), report.deviation_count);
            store
                .record_compliance_check(now, since, merges as i64, deviations as i64)
                .await?;
            tracing::info!(deviations, merges, "compliance check posted");
        }
        Err(error) if job.attempts < MAX_ATTEMPTS => return Err(error.into()),
        Err(error) => {
            tracing::error!(%error, "compliance check could not be posted; next period will try");
        }
    }
    Ok(Outcome::Again(next))
}

/// Attempts at posting one check before waiting for the next period: a check that never
/// arrives must not stop the ones after it.
const MAX_ATTEMPTS: i64 = 6;

async fn post(url: &str, message: &serde_json::Value) -> Result<(), CallError> {
    let response = outbound::client(false)
        .post(url)
        .json(message)
        .send()
        .await
        .map_err(|e| CallError::from_reqwest("compliance webhook", e))?;
    let code = response.status();
    if code.is_success() {
        return Ok(());
    }
    let retry_after = outbound::retry_after(&response);
    // The body of a webhook receiver is not ours to log; the status says enough.
    Err(CallError::from_status(
        "compliance webhook",
        code,
        retry_after,
        "",
    ))
}
