//! Commit statuses as ci-bridge wants them on GitLab, and as far as they were posted.
//!
//! One row per (GitLab project, sha, status name). A row belongs to one build at a time
//! (a rebuild of the same commit starts a new generation); updates from any other build are
//! ignored. Stages only move forward, pending < running < final, and the poster walks them
//! in order, so GitLab never sees the same state twice or a state going back.

use sqlx::{any::AnyRow, Any, Row, Transaction};

use super::{now_ms, queue::NewJob, JobKind, Store};

/// A stage of a commit status, in the order they happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusStage {
    /// Accepted by Jenkins, waiting in its queue.
    Pending { description: String, url: String },
    /// The build is running.
    Running { description: String, url: String },
    /// The end: `success`, `failed` or `canceled`.
    Final {
        state: &'static str,
        description: String,
        url: String,
    },
}

impl StatusStage {
    pub fn rank(&self) -> i64 {
        match self {
            Self::Pending { .. } => 1,
            Self::Running { .. } => 2,
            Self::Final { .. } => 3,
        }
    }
}

/// Identifies one commit status on GitLab.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatusKey {
    pub project_id: i64,
    pub sha: String,
    pub name: String,
}

impl StatusKey {
    /// The status a build reports to.
    pub fn of(build: &super::Build) -> Self {
        Self {
            project_id: build.gitlab_project_id,
            sha: build.sha.clone(),
            name: build.status_name.clone(),
        }
    }

    /// The queue key that serializes every post for this status.
    pub fn job_key(&self) -> String {
        format!("status:{}:{}:{}", self.project_id, self.sha, self.name)
    }

    pub fn post_job(&self) -> NewJob {
        let payload = serde_json::to_string(self).unwrap_or_default();
        NewJob::now(JobKind::PostStatus, payload).unique(self.job_key())
    }
}

#[derive(Debug, Clone)]
pub struct StatusRow {
    pub key: StatusKey,
    pub git_ref: String,
    pub build_id: String,
    pub wanted_rank: i64,
    pub posted_rank: i64,
    pub pending: Option<(String, String)>,
    pub running: Option<(String, String)>,
    pub final_state: Option<(String, String, String)>,
    /// The last error GitLab answered, if the latest post failed.
    pub last_error: Option<String>,
}

impl StatusRow {
    /// The next stage to post, if the status on GitLab is behind.
    pub fn next_stage(&self) -> Option<(i64, &'static str, &str, &str)> {
        let candidates = [
            (
                1,
                "pending",
                self.pending.as_ref().map(|(d, u)| (d.as_str(), u.as_str())),
            ),
            (
                2,
                "running",
                self.running.as_ref().map(|(d, u)| (d.as_str(), u.as_str())),
            ),
        ];
        for (rank, state, stage) in candidates {
            if let Some((description, url)) = stage {
                if rank > self.posted_rank && rank <= self.wanted_rank {
                    return Some((rank, state, description, url));
                }
            }
        }
        match &self.final_state {
            Some((state, description, url)) if self.posted_rank < 3 => Some((
                3,
                final_state_name(state),
                description.as_str(),
                url.as_str(),
            )),
            _ => None,
        }
    }

    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        let pair = |a: Option<String>, b: Option<String>| a.map(|a| (a, b.unwrap_or_default()));
        let final_state: Option<String> = row.try_get("final_state")?;
        Ok(Self {
            key: StatusKey {
                project_id: row.try_get("gitlab_project_id")?,
                sha: row.try_get("sha")?,
                name: row.try_get("status_name")?,
            },
            git_ref: row.try_get("git_ref")?,
            build_id: row.try_get("build_id")?,
            wanted_rank: row.try_get("wanted_rank")?,
            posted_rank: row.try_get("posted_rank")?,
            pending: pair(
                row.try_get("pending_description")?,
                row.try_get("pending_url")?,
            ),
            running: pair(
                row.try_get("running_description")?,
                row.try_get("running_url")?,
            ),
            last_error: row.try_get("last_error")?,
            final_state: final_state.map(|state| {
                (
                    state,
                    row.try_get("final_description")
                        .ok()
                        .flatten()
                        .unwrap_or_default(),
                    row.try_get("final_url").ok().flatten().unwrap_or_default(),
                )
            }),
        })
    }
}

fn final_state_name(state: &str) -> &'static str {
    match state {
        "success" => "success",
        "canceled" => "canceled",
        "skipped" => "skipped",
        _ => "failed",
    }
}

/// Makes `build_id` the owner of the status at `key`, starting from nothing (a new build
/// of this commit). Called when a build is planned.
pub(crate) async fn start_generation(
    tx: &mut Transaction<'_, Any>,
    key: &StatusKey,
    git_ref: &str,
    build_id: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO commit_statuses (gitlab_project_id, sha, status_name, git_ref, build_id, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (gitlab_project_id, sha, status_name) DO UPDATE SET \
           git_ref = excluded.git_ref, build_id = excluded.build_id, wanted_rank = 0, \
           posted_rank = CASE WHEN commit_statuses.posted_rank = 3 THEN 0 ELSE commit_statuses.posted_rank END, \
           pending_description = NULL, pending_url = NULL, running_description = NULL, \
           running_url = NULL, final_state = NULL, final_description = NULL, final_url = NULL, \
           updated_at = excluded.updated_at",
    )
    .bind(key.project_id)
    .bind(key.sha.as_str())
    .bind(key.name.as_str())
    .bind(git_ref)
    .bind(build_id)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Moves the status of `build_id` forward to `stage` and queues its post. Does nothing
/// (returns false) when the status belongs to another build or is already past the stage.
pub(crate) async fn advance(
    tx: &mut Transaction<'_, Any>,
    key: &StatusKey,
    build_id: &str,
    stage: &StatusStage,
) -> sqlx::Result<bool> {
    let rank = stage.rank();
    let (column_description, column_url, state) = match stage {
        StatusStage::Pending { .. } => ("pending_description", "pending_url", None),
        StatusStage::Running { .. } => ("running_description", "running_url", None),
        StatusStage::Final { state, .. } => ("final_description", "final_url", Some(*state)),
    };
    let (description, url) = match stage {
        StatusStage::Pending { description, url }
        | StatusStage::Running { description, url }
        | StatusStage::Final {
            description, url, ..
        } => (description, url),
    };
    let sql = format!(
        "UPDATE commit_statuses SET wanted_rank = $1, {column_description} = $2, {column_url} = $3, \
         final_state = COALESCE($4, final_state), updated_at = $5 \
         WHERE gitlab_project_id = $6 AND sha = $7 AND status_name = $8 AND build_id = $9 \
           AND wanted_rank < $1"
    );
    let changed = sqlx::query(&sql)
        .bind(rank)
        .bind(truncate(description, 255))
        .bind(url.as_str())
        .bind(state)
        .bind(now_ms())
        .bind(key.project_id)
        .bind(key.sha.as_str())
        .bind(key.name.as_str())
        .bind(build_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if changed > 0 {
        super::queue::insert_jobs(tx, &[&key.post_job()]).await?;
    }
    Ok(changed > 0)
}

/// GitLab takes at most 255 characters of description.
fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => text[..end].to_owned(),
        None => text.to_owned(),
    }
}

impl Store {
    pub async fn status(&self, key: &StatusKey) -> sqlx::Result<Option<StatusRow>> {
        let row = sqlx::query(
            "SELECT * FROM commit_statuses WHERE gitlab_project_id = $1 AND sha = $2 AND status_name = $3",
        )
        .bind(key.project_id)
        .bind(key.sha.as_str())
        .bind(key.name.as_str())
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| StatusRow::from_row(&row)).transpose()
    }

    /// Records why the latest post of this status failed.
    pub async fn record_status_error(&self, key: &StatusKey, error: &str) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE commit_statuses SET last_error = $1 \
             WHERE gitlab_project_id = $2 AND sha = $3 AND status_name = $4",
        )
        .bind(error)
        .bind(key.project_id)
        .bind(key.sha.as_str())
        .bind(key.name.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records that `rank` of the current generation is on GitLab.
    pub async fn mark_posted(
        &self,
        key: &StatusKey,
        build_id: &str,
        rank: i64,
        error: Option<&str>,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE commit_statuses SET posted_rank = $1, last_error = $2, updated_at = $3 \
             WHERE gitlab_project_id = $4 AND sha = $5 AND status_name = $6 AND build_id = $7 \
               AND posted_rank < $1",
        )
        .bind(rank)
        .bind(error)
        .bind(now_ms())
        .bind(key.project_id)
        .bind(key.sha.as_str())
        .bind(key.name.as_str())
        .bind(build_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn statuses_for_sha(
        &self,
        project_id: i64,
        sha: &str,
    ) -> sqlx::Result<Vec<StatusRow>> {
        let rows = sqlx::query(
            "SELECT * FROM commit_statuses WHERE gitlab_project_id = $1 AND sha = $2 ORDER BY status_name",
        )
        .bind(project_id)
        .bind(sha)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(StatusRow::from_row).collect()
    }
}
