//! Quality results: SonarQube analyses and SAST reports, stored as received (the raw body)
//! before they are answered, then resolved to a commit and an outcome by a job.

use sqlx::{any::AnyRow, Row};

use super::{insert_jobs, now_ms, JobKind, NewJob, Store};

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
    /// `success` or `failed` once resolved; `unresolved` when no commit could be found.
    pub outcome: Option<String>,
    pub description: Option<String>,
    pub target_url: Option<String>,
    pub summary: Option<serde_json::Value>,
    pub received_at: i64,
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
        })
    }
}

const COLUMNS: &str = "id, source, project_path, gitlab_project_id, sha, git_ref, mr_iid, \
     build_id, status_name, outcome, description, target_url, summary, received_at";

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

    /// The newest resolved result of `source` for a commit.
    pub async fn latest_quality(
        &self,
        project_id: i64,
        sha: &str,
        source: QualitySource,
    ) -> sqlx::Result<Option<QualityRow>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM quality_results WHERE gitlab_project_id = $1 AND sha = $2 \
             AND source = $3 AND processed_at IS NOT NULL ORDER BY received_at DESC, id DESC LIMIT 1"
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
         target_url = $9, summary = $10, processed_at = $11 WHERE id = $12",
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
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
