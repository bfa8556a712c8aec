//! Quality results: SonarQube analyses and SAST reports, stored as received (the raw body)
//! before they are answered, then resolved to a commit and an outcome by a job.
//!
//! A result the job applies to its status gets the next `applied_seq` of that status
//! (project, sha, status name); the applied result with the highest number is the one the
//! status, the note and the evidence show. A result that is not applied (an analysis older
//! than one already shown) keeps its reason in `decision`.

use sha2::{Digest, Sha256};
use sqlx::{any::AnyRow, Row};

use super::{insert_jobs, now_ms, JobKind, NewJob, StatusKey, Store};

/// Where a quality result comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QualitySource {
    SonarQube,
    Sast,
}

impl QualitySource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SonarQube => "sonarqube",
            Self::Sast => "sast",
        }
    }
}

/// One stored result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QualityRow {
    pub id: String,
    pub source: String,
    pub project_path: Option<String>,
    pub gitlab_project_id: Option<i64>,
    pub sha: Option<String>,
    pub git_ref: Option<String>,
    pub mr_iid: Option<i64>,
    pub build_id: Option<String>,
    pub status_name: Option<String>,
    /// `success` or `failed` once resolved; `unresolved` when no commit could be found;
    /// `superseded` when a newer analysis of the commit was already applied to its status.
    pub outcome: Option<String>,
    pub description: Option<String>,
    pub target_url: Option<String>,
    pub summary: Option<serde_json::Value>,
    pub received_at: i64,
    /// Why the result was or was not applied to its status.
    pub decision: Option<String>,
}

impl QualityRow {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        let summary: Option<String> = row.try_get("summary")?;
        Ok(Self {
            id: row.try_get("id")?,
            source: row.try_get("source")?,
            project_path: row.try_get("project_path")?,
            gitlab_project_id: row.try_get("gitlab_project_id")?,
            sha: row.try_get("sha")?,
            git_ref: row.try_get("git_ref")?,
            mr_iid: row.try_get("mr_iid")?,
            build_id: row.try_get("build_id")?,
            status_name: row.try_get("status_name")?,
            outcome: row.try_get("outcome")?,
            description: row.try_get("description")?,
            target_url: row.try_get("target_url")?,
            summary: summary.and_then(|s| serde_json::from_str(&s).ok()),
            received_at: row.try_get("received_at")?,
            decision: row.try_get("decision")?,
        })
    }
}

const COLUMNS: &str = "id, source, project_path, gitlab_project_id, sha, git_ref, mr_iid, \
     build_id, status_name, outcome, description, target_url, summary, received_at, decision";

/// What the resolving job found out about a result.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub project_path: String,
    pub gitlab_project_id: i64,
    pub sha: String,
    pub git_ref: String,
    pub mr_iid: Option<i64>,
    pub status_name: String,
    pub outcome: String,
    pub description: String,
    pub target_url: String,
    pub summary: serde_json::Value,
    /// When the analysis was made (SonarQube `analysedAt`, else `changedAt`), unix ms.
    pub analysed_ms: Option<i64>,
    /// SonarQube `changedAt`, unix ms: orders two events about the same analysis.
    pub changed_ms: Option<i64>,
}

/// The latest build of a commit, as far as the summary note and the evidence need it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildResult {
    pub build_id: String,
    pub status_name: String,
    pub state: String,
    pub result: Option<String>,
    pub description: Option<String>,
}

impl Store {
    /// Stores a received result and queues its job, in one transaction. Returns the id,
    /// and false when the same delivery (same `dedup_key`) was stored before.
    pub async fn record_quality_result(
        &self,
        source: QualitySource,
        dedup_key: &str,
        project_path: Option<&str>,
        build_id: Option<&str>,
        body: &[u8],
    ) -> sqlx::Result<(String, bool)> {
        let mut tx = self.begin().await?;
        let id = uuid::Uuid::now_v7().to_string();
        let inserted = sqlx::query(
            "INSERT INTO quality_results (id, source, dedup_key, project_path, build_id, body, \
             received_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dedup_key) DO NOTHING",
        )
        .bind(id.as_str())
        .bind(source.as_str())
        .bind(dedup_key)
        .bind(project_path)
        .bind(build_id)
        .bind(body.to_vec())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            let row = sqlx::query("SELECT id FROM quality_results WHERE dedup_key = $1")
                .bind(dedup_key)
                .fetch_one(&mut *tx)
                .await?;
            return Ok((row.try_get("id")?, false));
        }
        let payload = serde_json::json!({ "result_id": id }).to_string();
        let job = NewJob::now(JobKind::QualityResult, payload);
        insert_jobs(&mut tx, &[&job]).await?;
        tx.commit().await?;
        self.wake_workers();
        Ok((id, true))
    }

    /// A stored result with its raw body.
    pub async fn quality_result(&self, id: &str) -> sqlx::Result<Option<(QualityRow, Vec<u8>)>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, body FROM quality_results WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| Ok((QualityRow::from_row(&row)?, row.try_get("body")?)))
            .transpose()
    }

    /// The result of `source` that the commit's status shows: the last one applied to it.
    /// (Results stored before migration 6 have no number and rank by arrival.)
    pub async fn latest_quality(
        &self,
        project_id: i64,
        sha: &str,
        source: QualitySource,
    ) -> sqlx::Result<Option<QualityRow>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM quality_results WHERE gitlab_project_id = $1 AND sha = $2 \
             AND source = $3 AND processed_at IS NOT NULL AND outcome IN ('success', 'failed') \
             ORDER BY COALESCE(applied_seq, 0) DESC, received_at DESC, id DESC LIMIT 1"
        ))
        .bind(project_id)
        .bind(sha)
        .bind(source.as_str())
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| QualityRow::from_row(&row)).transpose()
    }

    /// The newest build of a commit.
    pub async fn latest_build_of(
        &self,
        project_id: i64,
        sha: &str,
    ) -> sqlx::Result<Option<BuildResult>> {
        let row = sqlx::query(
            "SELECT id, status_name, state, result, description FROM builds \
             WHERE gitlab_project_id = $1 AND sha = $2 ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(project_id)
        .bind(sha)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(BuildResult {
                build_id: row.try_get("id")?,
                status_name: row.try_get("status_name")?,
                state: row.try_get("state")?,
                result: row.try_get("result")?,
                description: row.try_get("description")?,
            })
        })
        .transpose()
    }

    /// `(gitlab project id, sha, ref)` of the newest build of a branch, or of a merge
    /// request when `mr_iid` is given.
    pub async fn latest_built_sha(
        &self,
        project_path: &str,
        branch: Option<&str>,
        mr_iid: Option<i64>,
    ) -> sqlx::Result<Option<(i64, String, String)>> {
        let row = sqlx::query(
            "SELECT gitlab_project_id, sha, git_ref FROM builds WHERE project_path = $1 \
             AND ($2 IS NULL OR git_ref = $2) AND ($3 IS NULL OR mr_iid = $3) \
             AND ($3 IS NOT NULL OR mr_iid IS NULL) ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(project_path)
        .bind(branch)
        .bind(mr_iid)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok((
                row.try_get("gitlab_project_id")?,
                row.try_get("sha")?,
                row.try_get("git_ref")?,
            ))
        })
        .transpose()
    }

    /// Any GitLab project id seen for a project path in a build.
    pub async fn project_id_for_path(&self, project_path: &str) -> sqlx::Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT gitlab_project_id FROM builds WHERE project_path = $1 AND mr_iid IS NULL \
             ORDER BY created_at DESC LIMIT 1",
        )
        .bind(project_path)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| row.try_get("gitlab_project_id")).transpose()
    }
}

/// Records what a result resolved to, inside the caller's transaction.
pub(crate) async fn resolve_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    resolution: Option<&Resolution>,
    unresolved_reason: &str,
) -> sqlx::Result<()> {
    let now = now_ms();
    let Some(r) = resolution else {
        sqlx::query(
            "UPDATE quality_results SET outcome = 'unresolved', description = $1, \
             processed_at = $2 WHERE id = $3",
        )
        .bind(unresolved_reason)
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
        return Ok(());
    };
    sqlx::query(
        "UPDATE quality_results SET project_path = $1, gitlab_project_id = $2, sha = $3, \
         git_ref = $4, mr_iid = $5, status_name = $6, outcome = $7, description = $8, \
         target_url = $9, summary = $10, processed_at = $11, analysed_ms = $12, \
         changed_ms = $13 WHERE id = $14",
    )
    .bind(r.project_path.as_str())
    .bind(r.gitlab_project_id)
    .bind(r.sha.as_str())
    .bind(r.git_ref.as_str())
    .bind(r.mr_iid)
    .bind(r.status_name.as_str())
    .bind(r.outcome.as_str())
    .bind(r.description.as_str())
    .bind(r.target_url.as_str())
    .bind(r.summary.to_string())
    .bind(now)
    .bind(r.analysed_ms)
    .bind(r.changed_ms)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A result applied to a status, as the next one is compared with it.
#[derive(Debug, Clone)]
pub(crate) struct AppliedResult {
    pub id: String,
    pub analysed_ms: Option<i64>,
    pub changed_ms: Option<i64>,
}

/// A stored report of one build, for combining them.
#[derive(Debug, Clone)]
pub(crate) struct BuildReport {
    pub id: String,
    pub body: Vec<u8>,
}

type Tx<'t> = sqlx::Transaction<'t, sqlx::Any>;

/// Deciding what a status shows, inside the caller's transaction. `key` names the status
/// (project, sha, status name) and `source` the kind of results that feed it.
impl Store {
    /// Makes the caller's transaction the only one deciding about this status until it
    /// ends. On SQLite the transaction's first write already excludes every other writer;
    /// PostgreSQL takes a transaction-scoped advisory lock named by the status.
    pub(crate) async fn lock_quality_status_in(
        tx: &mut Tx<'_>,
        key: &StatusKey,
        source: QualitySource,
    ) -> sqlx::Result<()> {
        if tx.backend_name() != "PostgreSQL" {
            return Ok(());
        }
        let name = format!(
            "quality:{}:{}:{}:{}",
            key.project_id,
            key.sha,
            source.as_str(),
            key.name
        );
        let digest = Sha256::digest(name.as_bytes());
        let lock = i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        sqlx::query("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock($1)) AS l")
            .bind(lock)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// The applied result of the status with the newest analysis time, if one has a time.
    pub(crate) async fn newest_applied_in(
        tx: &mut Tx<'_>,
        key: &StatusKey,
        source: QualitySource,
    ) -> sqlx::Result<Option<AppliedResult>> {
        let row = sqlx::query(
            "SELECT id, analysed_ms, changed_ms FROM quality_results \
             WHERE gitlab_project_id = $1 AND sha = $2 AND source = $3 AND status_name = $4 \
             AND applied_seq IS NOT NULL AND analysed_ms IS NOT NULL \
             ORDER BY analysed_ms DESC, COALESCE(changed_ms, 0) DESC, applied_seq DESC LIMIT 1",
        )
        .bind(key.project_id)
        .bind(key.sha.as_str())
        .bind(source.as_str())
        .bind(key.name.as_str())
        .fetch_optional(&mut **tx)
        .await?;
        row.map(|row| {
            Ok(AppliedResult {
                id: row.try_get("id")?,
                analysed_ms: row.try_get("analysed_ms")?,
                changed_ms: row.try_get("changed_ms")?,
            })
        })
        .transpose()
    }

    /// Marks a resolved result applied to its status: it gets the status's next number.
    pub(crate) async fn mark_applied_in(
        tx: &mut Tx<'_>,
        id: &str,
        key: &StatusKey,
        source: QualitySource,
        decision: &str,
    ) -> sqlx::Result<()> {
        let row = sqlx::query(
            "SELECT COALESCE(MAX(applied_seq), 0) AS seq FROM quality_results \
             WHERE gitlab_project_id = $1 AND sha = $2 AND source = $3 AND status_name = $4",
        )
        .bind(key.project_id)
        .bind(key.sha.as_str())
        .bind(source.as_str())
        .bind(key.name.as_str())
        .fetch_one(&mut **tx)
        .await?;
        let seq: i64 = row.try_get("seq")?;
        sqlx::query("UPDATE quality_results SET applied_seq = $1, decision = $2 WHERE id = $3")
            .bind(seq + 1)
            .bind(decision)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Marks a resolved result as not applied (`superseded`), with the reason.
    pub(crate) async fn mark_superseded_in(
        tx: &mut Tx<'_>,
        id: &str,
        decision: &str,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE quality_results SET outcome = 'superseded', decision = $1 WHERE id = $2",
        )
        .bind(decision)
        .bind(id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Every SAST report stored for a build, oldest first.
    pub(crate) async fn build_reports_in(
        tx: &mut Tx<'_>,
        build_id: &str,
    ) -> sqlx::Result<Vec<BuildReport>> {
        let rows = sqlx::query(
            "SELECT id, body FROM quality_results WHERE source = 'sast' AND build_id = $1 \
             ORDER BY received_at, id",
        )
        .bind(build_id)
        .fetch_all(&mut **tx)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(BuildReport {
                    id: row.try_get("id")?,
                    body: row.try_get("body")?,
                })
            })
            .collect()
    }

    /// True when the status already wants exactly this final state, text and link.
    pub(crate) async fn status_shows_in(
        tx: &mut Tx<'_>,
        key: &StatusKey,
        state: &str,
        description: &str,
        url: &str,
    ) -> sqlx::Result<bool> {
        let row = sqlx::query(
            "SELECT final_state, final_description, final_url FROM commit_statuses \
             WHERE gitlab_project_id = $1 AND sha = $2 AND status_name = $3 AND wanted_rank = 3",
        )
        .bind(key.project_id)
        .bind(key.sha.as_str())
        .bind(key.name.as_str())
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let state_now: Option<String> = row.try_get("final_state")?;
        let description_now: Option<String> = row.try_get("final_description")?;
        let url_now: Option<String> = row.try_get("final_url")?;
        Ok(state_now.as_deref() == Some(state)
            && description_now.as_deref() == Some(description)
            && url_now.as_deref().unwrap_or("") == url)
    }
}
