//! Builds: one row per Jenkins build ci-bridge asked for, from plan to result.

use std::collections::BTreeMap;

use sqlx::{any::AnyRow, Any, Row, Transaction};

use super::{now_ms, Store};

/// Where a build is in its life. Stored as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildState {
    /// Decided, not yet accepted by Jenkins.
    Planned,
    /// In the Jenkins queue.
    Queued,
    /// Running in Jenkins.
    Running,
    /// Ended with a Jenkins result.
    Finished,
    /// Will never run: Jenkins refused the trigger, the queue item was cancelled, or
    /// Jenkins lost it.
    Abandoned,
}

impl BuildState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Planned => "planned",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Abandoned => "abandoned",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "finished" => Self::Finished,
            "abandoned" => Self::Abandoned,
            _ => Self::Planned,
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Finished | Self::Abandoned)
    }
}

/// A build to plan.
#[derive(Debug, Clone)]
pub struct NewBuild {
    /// Also the `CI_BRIDGE_BUILD_ID` parameter.
    pub id: String,
    pub event_id: String,
    pub project_path: String,
    /// The GitLab project the statuses go to (the MR's source project).
    pub gitlab_project_id: i64,
    pub sha: String,
    pub git_ref: String,
    pub status_name: String,
    pub job_name: String,
    pub params: BTreeMap<String, String>,
    pub mr_iid: Option<i64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Build {
    pub id: String,
    pub event_id: String,
    pub project_path: String,
    pub gitlab_project_id: i64,
    pub sha: String,
    pub git_ref: String,
    pub status_name: String,
    pub job_name: String,
    pub params: BTreeMap<String, String>,
    pub mr_iid: Option<i64>,
    #[serde(serialize_with = "serialize_state")]
    pub state: BuildState,
    pub queue_id: Option<i64>,
    pub build_number: Option<i64>,
    pub result: Option<String>,
    pub description: Option<String>,
    pub created_at: i64,
    pub triggered_at: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub duration_ms: Option<i64>,
}

fn serialize_state<S: serde::Serializer>(state: &BuildState, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(state.as_str())
}

const COLUMNS: &str = "id, event_id, project_path, gitlab_project_id, sha, git_ref, status_name, \
     job_name, params, mr_iid, state, queue_id, build_number, result, description, created_at, \
     triggered_at, started_at, finished_at, duration_ms";

impl Build {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        let params: String = row.try_get("params")?;
        let state: String = row.try_get("state")?;
        Ok(Self {
            id: row.try_get("id")?,
            event_id: row.try_get("event_id")?,
            project_path: row.try_get("project_path")?,
            gitlab_project_id: row.try_get("gitlab_project_id")?,
            sha: row.try_get("sha")?,
            git_ref: row.try_get("git_ref")?,
            status_name: row.try_get("status_name")?,
            job_name: row.try_get("job_name")?,
            params: serde_json::from_str(&params).unwrap_or_default(),
            mr_iid: row.try_get("mr_iid")?,
            state: BuildState::parse(&state),
            queue_id: row.try_get("queue_id")?,
            build_number: row.try_get("build_number")?,
            result: row.try_get("result")?,
            description: row.try_get("description")?,
            created_at: row.try_get("created_at")?,
            triggered_at: row.try_get("triggered_at")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
            duration_ms: row.try_get("duration_ms")?,
        })
    }
}

/// Inserts planned builds inside the caller's transaction.
pub(crate) async fn insert_builds(
    tx: &mut Transaction<'_, Any>,
    builds: &[NewBuild],
) -> sqlx::Result<()> {
    let now = now_ms();
    for build in builds {
        sqlx::query(
            "INSERT INTO builds (id, event_id, project_path, gitlab_project_id, sha, git_ref, \
             status_name, job_name, params, mr_iid, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(build.id.as_str())
        .bind(build.event_id.as_str())
        .bind(build.project_path.as_str())
        .bind(build.gitlab_project_id)
        .bind(build.sha.as_str())
        .bind(build.git_ref.as_str())
        .bind(build.status_name.as_str())
        .bind(build.job_name.as_str())
        .bind(serde_json::to_string(&build.params).unwrap_or_else(|_| "{}".into()))
        .bind(build.mr_iid)
        .bind(BuildState::Planned.as_str())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Store {
    pub async fn build(&self, id: &str) -> sqlx::Result<Option<Build>> {
        if !super::is_storable_key(id) {
            return Ok(None);
        }
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM builds WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| Build::from_row(&row)).transpose()
    }

    pub async fn builds_for_event(&self, event_id: &str) -> sqlx::Result<Vec<Build>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM builds WHERE event_id = $1 ORDER BY created_at, id"
        ))
        .bind(event_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(Build::from_row).collect()
    }
}

/// Updates that move a build forward, applied inside a transaction together with the
/// status they cause. Each returns false when the build had already moved past that point.
pub(crate) mod transitions {
    use super::*;

    /// Jenkins accepted the trigger; the build waits in queue item `queue_id`.
    pub async fn queued(
        tx: &mut Transaction<'_, Any>,
        id: &str,
        queue_id: Option<i64>,
        description: &str,
    ) -> sqlx::Result<bool> {
        let changed = sqlx::query(
            "UPDATE builds SET state = 'queued', queue_id = $1, description = $2, triggered_at = $3 \
             WHERE id = $4 AND state = 'planned'",
        )
        .bind(queue_id)
        .bind(description)
        .bind(now_ms())
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(changed > 0)
    }

    pub async fn running(
        tx: &mut Transaction<'_, Any>,
        id: &str,
        number: i64,
    ) -> sqlx::Result<bool> {
        let changed = sqlx::query(
            "UPDATE builds SET state = 'running', build_number = $1, started_at = $2 \
             WHERE id = $3 AND state IN ('planned', 'queued')",
        )
        .bind(number)
        .bind(now_ms())
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(changed > 0)
    }

    /// Records the build number without changing the state (a callback may bring it).
    pub async fn number(tx: &mut Transaction<'_, Any>, id: &str, number: i64) -> sqlx::Result<()> {
        sqlx::query("UPDATE builds SET build_number = $1 WHERE id = $2 AND build_number IS NULL")
            .bind(number)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    pub async fn finished(
        tx: &mut Transaction<'_, Any>,
        id: &str,
        result: &str,
        duration_ms: Option<i64>,
        description: &str,
    ) -> sqlx::Result<bool> {
        let changed = sqlx::query(
            "UPDATE builds SET state = 'finished', result = $1, duration_ms = $2, description = $3, \
             finished_at = $4 WHERE id = $5 AND state NOT IN ('finished', 'abandoned')",
        )
        .bind(result)
        .bind(duration_ms)
        .bind(description)
        .bind(now_ms())
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(changed > 0)
    }

    pub async fn abandoned(
        tx: &mut Transaction<'_, Any>,
        id: &str,
        description: &str,
    ) -> sqlx::Result<bool> {
        let changed = sqlx::query(
            "UPDATE builds SET state = 'abandoned', description = $1, finished_at = $2 \
             WHERE id = $3 AND state NOT IN ('finished', 'abandoned')",
        )
        .bind(description)
        .bind(now_ms())
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(changed > 0)
    }
}

/// Which builds a new one replaces: the same status on the same branch (pushes) or the
/// same merge request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lineage {
    Branch(String),
    MergeRequest(i64),
}

/// Queries the planner runs inside its transaction.
pub(crate) mod lookups {
    use super::*;

    /// Builds of `sha` for this project and status that may still count: not abandoned.
    pub async fn for_sha(
        tx: &mut Transaction<'_, Any>,
        project_path: &str,
        sha: &str,
        status_name: &str,
    ) -> sqlx::Result<Vec<Build>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM builds WHERE project_path = $1 AND sha = $2 AND status_name = $3 \
             AND state <> 'abandoned' ORDER BY created_at"
        ))
        .bind(project_path)
        .bind(sha)
        .bind(status_name)
        .fetch_all(&mut **tx)
        .await?;
        rows.iter().map(Build::from_row).collect()
    }

    /// Builds not yet ended in a lineage (any status name when `status_name` is `None`).
    pub async fn active(
        tx: &mut Transaction<'_, Any>,
        project_path: &str,
        status_name: Option<&str>,
        lineage: &Lineage,
    ) -> sqlx::Result<Vec<Build>> {
        let lineage_sql = match lineage {
            Lineage::Branch(_) => "mr_iid IS NULL AND git_ref = $3",
            Lineage::MergeRequest(_) => "mr_iid = $3",
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM builds WHERE project_path = $1 \
             AND ($2 = '' OR status_name = $2) AND {lineage_sql} \
             AND state IN ('planned', 'queued', 'running') ORDER BY created_at"
        );
        let query = sqlx::query(&sql)
            .bind(project_path)
            .bind(status_name.unwrap_or(""));
        let query = match lineage {
            Lineage::Branch(branch) => query.bind(branch.as_str()),
            Lineage::MergeRequest(iid) => query.bind(*iid),
        };
        let rows = query.fetch_all(&mut **tx).await?;
        rows.iter().map(Build::from_row).collect()
    }
}
