//! The audit trail's tables: merge requests as last seen and their approvals, given and
//! withdrawn (the evidence chain is in `evidence.rs`).

use sqlx::{any::AnyRow, Any, Row, Transaction};

use super::{now_ms, Store};

/// A merge request as ci-bridge last saw it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MergeRequestRow {
    /// The target project (where the MR lives).
    pub project_id: i64,
    pub iid: i64,
    pub project_path: String,
    pub source_project_id: i64,
    pub source_branch: String,
    pub target_branch: String,
    pub title: Option<String>,
    pub author_id: Option<i64>,
    pub author_username: Option<String>,
    pub author_name: Option<String>,
    pub head_sha: Option<String>,
    pub state: Option<String>,
    pub note_id: Option<i64>,
    pub note_hash: Option<String>,
    /// JSON list of `{name, email}`.
    pub commit_authors: Option<String>,
}

impl MergeRequestRow {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        Ok(Self {
            project_id: row.try_get("project_id")?,
            iid: row.try_get("iid")?,
            project_path: row.try_get("project_path")?,
            source_project_id: row.try_get("source_project_id")?,
            source_branch: row.try_get("source_branch")?,
            target_branch: row.try_get("target_branch")?,
            title: row.try_get("title")?,
            author_id: row.try_get("author_id")?,
            author_username: row.try_get("author_username")?,
            author_name: row.try_get("author_name")?,
            head_sha: row.try_get("head_sha")?,
            state: row.try_get("state")?,
            note_id: row.try_get("note_id")?,
            note_hash: row.try_get("note_hash")?,
            commit_authors: row.try_get("commit_authors")?,
        })
    }
}

/// One user's approval of a merge request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApprovalRow {
    pub user_id: i64,
    pub username: Option<String>,
    pub name: Option<String>,
    pub approved_at: i64,
    pub withdrawn_at: Option<i64>,
}

/// A user as GitLab names them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserRef {
    pub id: i64,
    pub username: Option<String>,
    pub name: Option<String>,
}

/// Inserts or refreshes a merge request; fields given as `None` keep their value.
pub(crate) async fn upsert_merge_request(
    tx: &mut Transaction<'_, Any>,
    mr: &MergeRequestRow,
) -> sqlx::Result<()> {
    sqlx::query(
            "INSERT INTO merge_requests (project_id, iid, project_path, source_project_id, \
             source_branch, target_branch, title, author_id, author_username, author_name, \
             head_sha, state, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (project_id, iid) DO UPDATE SET project_path = excluded.project_path, \
             source_project_id = excluded.source_project_id, source_branch = excluded.source_branch, \
             target_branch = excluded.target_branch, \
             title = COALESCE(excluded.title, merge_requests.title), \
             author_id = COALESCE(excluded.author_id, merge_requests.author_id), \
             author_username = COALESCE(excluded.author_username, merge_requests.author_username), \
             author_name = COALESCE(excluded.author_name, merge_requests.author_name), \
             head_sha = COALESCE(excluded.head_sha, merge_requests.head_sha), \
             state = COALESCE(excluded.state, merge_requests.state), updated_at = excluded.updated_at",
        )
        .bind(mr.project_id)
        .bind(mr.iid)
        .bind(mr.project_path.as_str())
        .bind(mr.source_project_id)
        .bind(mr.source_branch.as_str())
        .bind(mr.target_branch.as_str())
        .bind(mr.title.as_deref())
        .bind(mr.author_id)
        .bind(mr.author_username.as_deref())
        .bind(mr.author_name.as_deref())
        .bind(mr.head_sha.as_deref())
        .bind(mr.state.as_deref())
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    pub async fn merge_request(
        &self,
        project_id: i64,
        iid: i64,
    ) -> sqlx::Result<Option<MergeRequestRow>> {
        let row = sqlx::query("SELECT * FROM merge_requests WHERE project_id = $1 AND iid = $2")
            .bind(project_id)
            .bind(iid)
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| MergeRequestRow::from_row(&row)).transpose()
    }

    /// A merge request by its project's path.
    pub async fn merge_request_by_path(
        &self,
        path: &str,
        iid: i64,
    ) -> sqlx::Result<Option<MergeRequestRow>> {
        let row = sqlx::query("SELECT * FROM merge_requests WHERE project_path = $1 AND iid = $2")
            .bind(path)
            .bind(iid)
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| MergeRequestRow::from_row(&row)).transpose()
    }

    /// Open merge requests whose head is `sha` (a quality result's note goes there).
    pub async fn merge_requests_at(&self, sha: &str) -> sqlx::Result<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "SELECT project_id, iid FROM merge_requests WHERE head_sha = $1 \
             AND (state IS NULL OR state NOT IN ('merged', 'closed'))",
        )
        .bind(sha)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("project_id")?, row.try_get("iid")?)))
            .collect()
    }

    pub async fn set_commit_authors(
        &self,
        project_id: i64,
        iid: i64,
        json: &str,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE merge_requests SET commit_authors = $1 WHERE project_id = $2 AND iid = $3",
        )
        .bind(json)
        .bind(project_id)
        .bind(iid)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Remembers the summary note and the hash of the body it was last given.
    pub async fn set_note(
        &self,
        project_id: i64,
        iid: i64,
        note_id: i64,
        hash: &str,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE merge_requests SET note_id = $1, note_hash = $2 WHERE project_id = $3 AND iid = $4",
        )
        .bind(note_id)
        .bind(hash)
        .bind(project_id)
        .bind(iid)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Makes the stored approvals match what the approvals API says now.
    pub async fn sync_approvals(
        &self,
        project_id: i64,
        iid: i64,
        users: &[UserRef],
    ) -> sqlx::Result<()> {
        let current = self.approvals(project_id, iid).await?;
        let mut tx = self.begin().await?;
        for user in users {
            record_approval(&mut tx, project_id, iid, user).await?;
        }
        for row in current {
            if row.withdrawn_at.is_none() && !users.iter().any(|u| u.id == row.user_id) {
                record_unapproval(&mut tx, project_id, iid, row.user_id).await?;
            }
        }
        tx.commit().await
    }

    /// Every approval ever given on a merge request, withdrawn ones included.
    pub async fn approvals(&self, project_id: i64, iid: i64) -> sqlx::Result<Vec<ApprovalRow>> {
        let rows = sqlx::query(
            "SELECT user_id, username, name, approved_at, withdrawn_at FROM approvals \
             WHERE project_id = $1 AND mr_iid = $2 ORDER BY approved_at, user_id",
        )
        .bind(project_id)
        .bind(iid)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ApprovalRow {
                    user_id: row.try_get("user_id")?,
                    username: row.try_get("username")?,
                    name: row.try_get("name")?,
                    approved_at: row.try_get("approved_at")?,
                    withdrawn_at: row.try_get("withdrawn_at")?,
                })
            })
            .collect()
    }
}

/// Records that `user` approved (again, if they had withdrawn).
pub(crate) async fn record_approval(
    tx: &mut Transaction<'_, Any>,
    project_id: i64,
    iid: i64,
    user: &UserRef,
) -> sqlx::Result<()> {
    sqlx::query(
            "INSERT INTO approvals (project_id, mr_iid, user_id, username, name, approved_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (project_id, mr_iid, user_id) DO UPDATE SET \
             username = COALESCE(excluded.username, approvals.username), \
             name = COALESCE(excluded.name, approvals.name), \
             approved_at = CASE WHEN approvals.withdrawn_at IS NULL THEN approvals.approved_at \
               ELSE excluded.approved_at END, withdrawn_at = NULL",
        )
        .bind(project_id)
        .bind(iid)
        .bind(user.id)
        .bind(user.username.as_deref())
        .bind(user.name.as_deref())
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Records that `user_id` withdrew their approval.
pub(crate) async fn record_unapproval(
    tx: &mut Transaction<'_, Any>,
    project_id: i64,
    iid: i64,
    user_id: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE approvals SET withdrawn_at = $1 WHERE project_id = $2 AND mr_iid = $3 \
             AND user_id = $4 AND withdrawn_at IS NULL",
    )
    .bind(now_ms())
    .bind(project_id)
    .bind(iid)
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
