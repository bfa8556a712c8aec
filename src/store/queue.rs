//! The work queue: jobs claimed under a lease, retried with backoff, kept as dead letters
//! when they give up.
//!
//! - A claimed job is reserved for its worker until `lease_until`; a process that dies
//!   loses its jobs to the others once the lease runs out, so no job is lost.
//! - A job with a `unique_key` is coalesced: enqueueing it again while it waits or runs
//!   bumps its `version`, and a worker that finishes an older version runs it again.
//! - On PostgreSQL, claims use `FOR UPDATE SKIP LOCKED`, so replicas share work without a
//!   leader.

use sqlx::{any::AnyRow, Any, Row, Transaction};

use super::{ingest::push_placeholders, now_ms, Backend, Store};

/// What a job does; stored as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Decide what a received GitLab event builds.
    ProcessEvent,
    /// Start one Jenkins build.
    Trigger,
    /// Follow a triggered build through the Jenkins queue to its result.
    Track,
    /// Bring one commit status on GitLab up to date.
    PostStatus,
    /// Cancel a build that is no longer wanted (superseded, or its merge request closed).
    Cancel,
    /// Keep the audit trail of a merge request or push (approvals, evidence, deviations).
    Audit,
    /// Turn a stored SonarQube analysis or SAST report into its commit status.
    QualityResult,
    /// Bring a merge request's four-eyes status and summary note up to date.
    MrCheck,
    /// Render a merge request's summary note and edit it in place (or post it once).
    MrNote,
    /// The scheduled deviation check; it reschedules itself.
    ComplianceCheck,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProcessEvent => "process_event",
            Self::Trigger => "trigger",
            Self::Track => "track",
            Self::PostStatus => "post_status",
            Self::Cancel => "cancel",
            Self::Audit => "audit",
            Self::QualityResult => "quality_result",
            Self::MrCheck => "mr_check",
            Self::MrNote => "mr_note",
            Self::ComplianceCheck => "compliance_check",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "process_event" => Self::ProcessEvent,
            "trigger" => Self::Trigger,
            "track" => Self::Track,
            "post_status" => Self::PostStatus,
            "cancel" => Self::Cancel,
            "audit" => Self::Audit,
            "quality_result" => Self::QualityResult,
            "mr_check" => Self::MrCheck,
            "mr_note" => Self::MrNote,
            "compliance_check" => Self::ComplianceCheck,
            _ => return None,
        })
    }
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: JobKind,
    pub payload: String,
    pub unique_key: Option<String>,
    pub run_at: i64,
}

impl NewJob {
    pub fn now(kind: JobKind, payload: impl Into<String>) -> Self {
        Self {
            kind,
            payload: payload.into(),
            unique_key: None,
            run_at: now_ms(),
        }
    }

    pub fn unique(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    pub fn at(mut self, run_at: i64) -> Self {
        self.run_at = run_at;
        self
    }
}

/// A job reserved for one worker.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    /// Claims so far, this one included.
    pub attempts: i64,
    pub version: i64,
    pub created_at: i64,
    /// The worker holding the lease; only it may finish or put back the job.
    pub owner: String,
}

/// A job that gave up, for the admin API.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadJob {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct QueueStats {
    pub ready: i64,
    pub waiting: i64,
    pub dead: i64,
    pub oldest_ready_age_ms: i64,
}

const CLAIM_SQLITE: &str =
    "UPDATE jobs SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
     WHERE id = (SELECT j.id FROM jobs j \
       WHERE j.dead = 0 AND j.run_at <= $3 AND (j.lease_until IS NULL OR j.lease_until < $3) \
       ORDER BY j.run_at, j.id LIMIT 1) \
     RETURNING id, kind, payload, attempts, version, created_at";

const CLAIM_POSTGRES: &str =
    "UPDATE jobs SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
     WHERE id = (SELECT j.id FROM jobs j \
       WHERE j.dead = 0 AND j.run_at <= $3 AND (j.lease_until IS NULL OR j.lease_until < $3) \
       ORDER BY j.run_at, j.id LIMIT 1 FOR UPDATE SKIP LOCKED) \
     RETURNING id, kind, payload, attempts, version, created_at";

/// Inserts jobs inside a transaction; a job whose `unique_key` is already queued bumps
/// that job instead (earlier `run_at` wins).
pub(crate) async fn insert_jobs(
    tx: &mut Transaction<'_, Any>,
    jobs: &[&NewJob],
) -> sqlx::Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    if tx.backend_name() == "PostgreSQL" {
        // Delivered when the transaction commits, to every replica's listener.
        sqlx::query(&format!("NOTIFY {}", super::listen::CHANNEL))
            .execute(&mut **tx)
            .await?;
    }
    let now = now_ms();
    let (plain, unique): (Vec<&&NewJob>, Vec<&&NewJob>) =
        jobs.iter().partition(|job| job.unique_key.is_none());
    if !plain.is_empty() {
        let mut sql = String::from("INSERT INTO jobs (kind, payload, run_at, created_at) VALUES ");
        push_placeholders(&mut sql, plain.len(), 4);
        let mut insert = sqlx::query(&sql);
        for job in plain {
            insert = insert
                .bind(job.kind.as_str())
                .bind(job.payload.as_str())
                .bind(job.run_at)
                .bind(now);
        }
        insert.execute(&mut **tx).await?;
    }
    let mut seen = std::collections::HashSet::new();
    for job in unique
        .into_iter()
        .filter(|job| seen.insert(job.unique_key.as_deref()))
    {
        sqlx::query(
            "INSERT INTO jobs (kind, unique_key, payload, run_at, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (unique_key) DO UPDATE SET version = jobs.version + 1, \
               run_at = CASE WHEN excluded.run_at < jobs.run_at THEN excluded.run_at ELSE jobs.run_at END, \
               dead = 0, attempts = CASE WHEN jobs.dead = 1 THEN 0 ELSE jobs.attempts END",
        )
        .bind(job.kind.as_str())
        .bind(job.unique_key.as_deref())
        .bind(job.payload.as_str())
        .bind(job.run_at)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Enqueues jobs in their own transaction and wakes the workers.
    pub async fn enqueue(&self, jobs: &[NewJob]) -> sqlx::Result<()> {
        let mut tx = self.begin().await?;
        insert_jobs(&mut tx, &jobs.iter().collect::<Vec<_>>()).await?;
        tx.commit().await?;
        self.wake_workers();
        Ok(())
    }

    /// On SQLite only one process uses the database, so leases left by a process that
    /// died belong to nobody: release them at start instead of waiting for them to expire.
    /// On PostgreSQL other replicas may hold leases, which are left to run out.
    pub async fn release_own_leases_on_start(&self) -> sqlx::Result<()> {
        if self.backend() == Backend::Sqlite {
            sqlx::query("UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_until IS NOT NULL")
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    /// Reserves the next ready job for `owner` until `now + lease_ms`.
    pub async fn claim(&self, owner: &str, lease_ms: i64) -> sqlx::Result<Option<ClaimedJob>> {
        let now = now_ms();
        // A read first: when nothing is ready (the common case for an idle worker) no
        // write is attempted, which on SQLite would contend with the event writer.
        let ready = sqlx::query(
            "SELECT id FROM jobs WHERE dead = 0 AND run_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1) LIMIT 1",
        )
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        if ready.is_none() {
            return Ok(None);
        }
        let sql = match self.backend() {
            Backend::Sqlite => CLAIM_SQLITE,
            Backend::Postgres => CLAIM_POSTGRES,
        };
        let row = sqlx::query(sql)
            .bind(owner)
            .bind(now + lease_ms)
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| claimed_from_row(&row, owner)).transpose()
    }

    /// Milliseconds until the next job no worker holds is due (for an idle worker's
    /// sleep). Leases that run out are noticed by the idle poll.
    pub async fn next_due_in(&self) -> sqlx::Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT MIN(run_at) AS due FROM jobs WHERE dead = 0 AND lease_until IS NULL",
        )
        .fetch_one(self.pool())
        .await?;
        let due: Option<i64> = row.try_get("due")?;
        Ok(due.map(|due| (due - now_ms()).max(0)))
    }

    /// Finishes a job inside the caller's transaction. When the job was enqueued again
    /// while it ran, it is released to run once more instead of being deleted.
    pub async fn complete_in(tx: &mut Transaction<'_, Any>, job: &ClaimedJob) -> sqlx::Result<()> {
        let deleted =
            sqlx::query("DELETE FROM jobs WHERE id = $1 AND version = $2 AND lease_owner = $3")
                .bind(job.id)
                .bind(job.version)
                .bind(job.owner.as_str())
                .execute(&mut **tx)
                .await?
                .rows_affected();
        if deleted == 0 {
            // Enqueued again meanwhile (or, were its lease lost, now another worker's).
            sqlx::query(
                "UPDATE jobs SET lease_owner = NULL, lease_until = NULL, attempts = 0 \
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(job.id)
            .bind(job.owner.as_str())
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Makes every job of `kind` that waits for a retry due now: the system it calls is
    /// back, and the backlog should drain in the order it arrived, not in the order the
    /// jittered retry times happen to fall.
    pub async fn retry_now(&self, kind: JobKind) -> sqlx::Result<u64> {
        let now = now_ms();
        let pulled = sqlx::query(
            "UPDATE jobs SET run_at = created_at WHERE kind = $1 AND dead = 0 AND attempts > 0 \
             AND lease_until IS NULL AND run_at > $2",
        )
        .bind(kind.as_str())
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        if pulled > 0 {
            self.wake_workers();
        }
        Ok(pulled)
    }

    /// Extends the lease of a job that is still running; false when the lease was lost.
    pub async fn renew_lease(&self, job: &ClaimedJob, lease_ms: i64) -> sqlx::Result<bool> {
        let renewed =
            sqlx::query("UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3")
                .bind(now_ms() + lease_ms)
                .bind(job.id)
                .bind(job.owner.as_str())
                .execute(self.pool())
                .await?
                .rows_affected();
        Ok(renewed > 0)
    }

    pub async fn complete(&self, job: &ClaimedJob) -> sqlx::Result<()> {
        let mut tx = self.begin().await?;
        Self::complete_in(&mut tx, job).await?;
        tx.commit().await
    }

    /// Puts a job back to run at `run_at`. `counts_as_failure` keeps its attempt count
    /// (a retry); otherwise the count restarts (a poll that simply has to look again).
    pub async fn reschedule(
        &self,
        job: &ClaimedJob,
        run_at: i64,
        error: Option<&str>,
        counts_as_failure: bool,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE jobs SET run_at = $1, lease_owner = NULL, lease_until = NULL, \
             last_error = COALESCE($2, last_error), \
             attempts = CASE WHEN $3 = 1 THEN attempts ELSE 0 END WHERE id = $4 AND lease_owner = $5",
        )
        .bind(run_at)
        .bind(error)
        .bind(i64::from(counts_as_failure))
        .bind(job.id)
        .bind(job.owner.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Gives a job up: it stays as a dead letter with its last error until replayed.
    pub async fn bury(&self, job: &ClaimedJob, error: &str) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE jobs SET dead = 1, lease_owner = NULL, lease_until = NULL, last_error = $1 \
             WHERE id = $2 AND lease_owner = $3",
        )
        .bind(error)
        .bind(job.id)
        .bind(job.owner.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn queue_stats(&self) -> sqlx::Result<QueueStats> {
        let now = now_ms();
        let row = sqlx::query(
            "SELECT \
               COUNT(CASE WHEN dead = 0 AND run_at <= $1 THEN 1 END) AS ready, \
               COUNT(CASE WHEN dead = 0 AND run_at > $1 THEN 1 END) AS waiting, \
               COUNT(CASE WHEN dead = 1 THEN 1 END) AS dead, \
               MIN(CASE WHEN dead = 0 AND run_at <= $1 THEN run_at END) AS oldest \
             FROM jobs",
        )
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        let oldest: Option<i64> = row.try_get("oldest")?;
        Ok(QueueStats {
            ready: row.try_get("ready")?,
            waiting: row.try_get("waiting")?,
            dead: row.try_get("dead")?,
            oldest_ready_age_ms: oldest.map(|t| (now - t).max(0)).unwrap_or(0),
        })
    }
}

fn claimed_from_row(row: &AnyRow, owner: &str) -> sqlx::Result<ClaimedJob> {
    Ok(ClaimedJob {
        owner: owner.to_owned(),
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        payload: row.try_get("payload")?,
        attempts: row.try_get("attempts")?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
    })
}
