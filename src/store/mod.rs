//! Durable storage: received events, the work queue, builds and commit statuses.
//!
//! One interface over SQLite (the embedded default) and PostgreSQL (for several replicas).
//! Queries are written once in the SQL both accept (`$1` parameters, `ON CONFLICT`,
//! `RETURNING`); the few statements that differ are chosen by [`Backend`].

mod audit;
mod builds;
mod cursors;
mod dead_letters;
mod evidence;
mod ingest;
mod listen;
mod migrate;
mod quality;
mod queue;
mod statuses;

use std::{sync::Arc, time::Duration};

use sqlx::{
    any::{AnyPoolOptions, AnyRow},
    AnyPool, Row,
};
use tokio::sync::Notify;

pub use audit::{ApprovalRow, MergeRequestRow, UserRef};
pub use builds::{Build, BuildState, Lineage, NewBuild};
pub use cursors::{audit_job, plan_job, PendingEvent};
pub use evidence::{CheckMark, DeliveredCheck, EvidenceRow, GuardedPush};
pub use ingest::{Ingest, Ingested, NewEvent};
pub use quality::{BuildResult, QualityRow, QualitySource, Resolution};
pub use queue::{ClaimedJob, DeadJob, JobKind, NewJob, QueueStats};
pub use statuses::{StatusKey, StatusRow, StatusStage};

pub(crate) use builds::insert_builds;
pub(crate) use queue::insert_jobs;

/// Build transitions and lookups, for use inside a caller's transaction.
pub(crate) mod builds_tx {
    pub(crate) use super::builds::lookups::*;
    pub(crate) use super::builds::transitions::*;
}

/// Audit-trail writes, for use inside a caller's transaction.
pub(crate) mod audit_tx {
    pub(crate) use super::audit::{record_approval, record_unapproval, upsert_merge_request};
    pub(crate) use super::cursors::mark_audited;
    pub(crate) use super::evidence::{append_evidence, chain_head, record_guarded_push};
    pub(crate) use super::quality::resolve_in;
}

/// Status updates, for use inside a caller's transaction.
pub(crate) mod statuses_tx {
    pub(crate) use super::statuses::{advance, start_generation};
}

use crate::config::Secret;

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How long an SQLite connection waits for another writer before giving up, in ms. Writers
/// are short transactions; five seconds is far beyond any of them.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

/// The database, shared by the HTTP edge and the workers.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Woken whenever a job may have become ready in this process.
    jobs_ready: Arc<Notify>,
    /// Webhooks waiting for the event writer in this process; workers give way to them.
    ingest_pending: Arc<std::sync::atomic::AtomicUsize>,
    url: Secret,
}

impl Store {
    /// Connects, creating an SQLite file on first start, and runs the migrations.
    pub async fn connect(url: &Secret, max_connections: u32) -> anyhow::Result<Self> {
        Self::open(url, max_connections, true).await
    }

    /// Connects to a database that must exist already (an SQLite file is never created),
    /// for the commands that read the audit trail.
    pub async fn connect_existing(url: &Secret) -> anyhow::Result<Self> {
        Self::open(url, 2, false).await
    }

    async fn open(url: &Secret, max_connections: u32, create: bool) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let raw = url.expose();
        let (backend, connect_url) = if raw.starts_with("sqlite:") {
            (Backend::Sqlite, sqlite_url_with_mode(raw, create))
        } else {
            (Backend::Postgres, raw.to_owned())
        };
        let options = AnyPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10));
        let options = match backend {
            Backend::Sqlite => options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    use sqlx::Executor;
                    // Durable on power loss: every commit is fsynced. Group commit in
                    // `ingest` keeps this as fast as a weaker setting would be.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute(
                        format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}").as_str(),
                    )
                    .await?;
                    Ok(())
                })
            }),
            Backend::Postgres => options,
        };
        let pool = options.connect(&connect_url).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot open database {}: {e}",
                crate::config::mask_database_url(raw)
            )
        })?;
        let store = Self {
            pool,
            backend,
            jobs_ready: Arc::new(Notify::new()),
            ingest_pending: Arc::default(),
            url: url.clone(),
        };
        migrate::run(&store).await?;
        Ok(store)
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a transaction that read first and wrote later would fail with
    /// "database is locked" whenever another connection committed in between.
    pub async fn begin(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Any>> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The signal workers wait on; see [`Store::wake_workers`].
    pub fn jobs_ready(&self) -> Arc<Notify> {
        self.jobs_ready.clone()
    }

    /// Webhooks in this process waiting for their commit right now.
    pub fn ingest_pending(&self) -> usize {
        self.ingest_pending
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn ingest_counter(&self) -> Arc<std::sync::atomic::AtomicUsize> {
        self.ingest_pending.clone()
    }

    /// Tells an idle worker in this process to look for jobs now. A worker that finds one
    /// wakes the next, so as many wake up as there is work, and no more.
    pub fn wake_workers(&self) {
        self.jobs_ready.notify_one();
    }

    /// True when the database answers a query; `/readyz` reports it.
    pub async fn ping(&self) -> bool {
        let query = sqlx::query("SELECT 1").fetch_one(&self.pool);
        matches!(
            tokio::time::timeout(Duration::from_secs(2), query).await,
            Ok(Ok(_))
        )
    }

    /// One received event, for the admin API.
    pub async fn event(&self, id: &str) -> sqlx::Result<Option<EventRecord>> {
        if !is_storable_key(id) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT id, source, kind, project, received_at, processed_at, outcome \
             FROM events WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| EventRecord::from_row(&row)).transpose()
    }

    /// The stored body of an event, for the worker.
    pub async fn event_body(&self, id: &str) -> sqlx::Result<Option<(String, Vec<u8>)>> {
        let row = sqlx::query("SELECT kind, body FROM events WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Ok((row.try_get("kind")?, row.try_get("body")?)))
            .transpose()
    }

    /// Number of stored events (the benchmark compares it with the answers it got).
    pub async fn event_count(&self) -> sqlx::Result<i64> {
        sqlx::query("SELECT COUNT(*) AS n FROM events")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")
    }
}

/// An event as the admin API shows it (never its body's secrets: bodies carry none, and
/// headers are not stored).
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventRecord {
    pub id: String,
    pub source: String,
    pub kind: String,
    pub project: Option<String>,
    pub received_at: i64,
    pub processed_at: Option<i64>,
    pub outcome: Option<serde_json::Value>,
}

impl EventRecord {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        let outcome: Option<String> = row.try_get("outcome")?;
        Ok(Self {
            id: row.try_get("id")?,
            source: row.try_get("source")?,
            kind: row.try_get("kind")?,
            project: row.try_get("project")?,
            received_at: row.try_get("received_at")?,
            processed_at: row.try_get("processed_at")?,
            outcome: outcome.and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok()),
        })
    }
}

/// Ids come from requests; one PostgreSQL cannot even compare (a NUL) matches nothing.
pub(crate) fn is_storable_key(id: &str) -> bool {
    !id.contains('\0')
}

/// `sqlite://path` with `mode=rwc`, so the file is created on first start.
/// The SQLite URL that creates the file if need be.
fn sqlite_url(raw: &str) -> String {
    sqlite_url_with_mode(raw, true)
}

/// The SQLite URL with its open mode: `rwc` creates the file, `rw` needs it.
fn sqlite_url_with_mode(raw: &str, create: bool) -> String {
    let mode = if create { "rwc" } else { "rw" };
    if raw.contains("mode=") || raw.contains(":memory:") {
        raw.to_owned()
    } else if raw.contains('?') {
        format!("{raw}&mode={mode}")
    } else {
        format!("{raw}?mode={mode}")
    }
}

/// Milliseconds since the unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
