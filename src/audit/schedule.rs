//! The scheduled compliance check: every `compliance.interval` (daily by default) it
//! builds the report of the time since the last delivered check and posts its deviations to
//! `compliance.webhook_url`. The job reschedules itself; [`seed`] queues its first run at
//! start when a webhook is configured (a restart does not postpone a due check).

use std::time::Duration;

use super::{formats, report};
use crate::{
    config::ComplianceConfig,
    outbound::{self, CallError},
    store::{now_ms, ClaimedJob, DeliveredCheck, EvidenceRow, GuardedPush, JobKind, NewJob, Store},
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
    let now = now_ms();
    let scope = scope(&services.store, now, period).await?;
    let (label, period) = if scope.since == 0 {
        (
            "all".to_owned(),
            "all recorded so far (first check)".to_owned(),
        )
    } else {
        let window = Duration::from_secs(((now - scope.since).max(1) as u64).div_ceil(1000));
        let label = humantime::format_duration(window).to_string();
        let period = format!("the last {label}");
        (label, period)
    };
    let store = &services.store;
    let report = report::assemble(store, scope.evidence, &scope.pushes, &label, &period).await?;
    match post(url.expose(), &formats::webhook_message(&report)).await {
        Ok(()) => {
            let (merges, deviations) = (report.merges.len(), report.deviation_count);
            let delivered = DeliveredCheck {
                checked_at: now,
                since: scope.since,
                through_seq: scope.head.as_ref().map(|(seq, _)| *seq),
                through_hash: scope.head.as_ref().map(|(_, hash)| hash.clone()),
                merges: merges as i64,
                deviations: deviations as i64,
                push_event_ids: scope.pushes.into_iter().map(|p| p.event_id).collect(),
            };
            store.record_compliance_check(&delivered).await?;
            tracing::info!(deviations, merges, "compliance check posted");
        }
        Err(error) if job.attempts < MAX_ATTEMPTS => return Err(error.into()),
        Err(error) => {
            tracing::error!(%error, "compliance check could not be posted; next period will try");
        }
    }
    Ok(Outcome::Again(next))
}

/// What one check covers. Evidence is taken by its sequence number after the last record
/// a delivered check covered (all of it for the first check), so a merge committed while
/// a check was running is in the next one. Guarded pushes are taken until a delivered
/// check has covered them, once they are [`PUSH_GRACE`] old: a merge's push hook often
/// arrives before its merge hook, and the push is not a deviation once the merge is
/// recorded.
struct Scope {
    since: i64,
    evidence: Vec<EvidenceRow>,
    /// The chain head after this check: the last record covered, with its hash.
    head: Option<(i64, String)>,
    pushes: Vec<GuardedPush>,
}

/// How long a guarded push waits for the merge that explains it (at most one period).
const PUSH_GRACE: Duration = Duration::from_secs(5 * 60);

async fn scope(store: &Store, now: i64, period: Duration) -> sqlx::Result<Scope> {
    let last = store.last_compliance_check().await?;
    let previous_head = last
        .as_ref()
        .and_then(|mark| Some((mark.through_seq?, mark.through_hash.clone()?)));
    let (since, evidence) = match (&last, &previous_head) {
        (None, _) => (0, store.evidence_after(0).await?),
        (Some(mark), Some((seq, _))) => (mark.checked_at, store.evidence_after(*seq).await?),
        // A check from before checks kept the chain head: by time, as it was then.
        (Some(mark), None) => (
            mark.checked_at,
            store.evidence(Some(mark.checked_at)).await?,
        ),
    };
    let head = evidence
        .last()
        .map(|row| (row.seq, row.hash.clone()))
        .or(previous_head);
    let grace = PUSH_GRACE.min(period).as_millis() as i64;
    let from = if since == 0 { 0 } else { since - grace };
    let pushes = store.unchecked_guarded_pushes(from, now - grace).await?;
    Ok(Scope {
        since,
        evidence,
        head,
        pushes,
    })
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
