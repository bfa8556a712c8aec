//! The evidence chain's table, pushes to guarded branches, and the delivered compliance
//! checks.

use sqlx::{any::AnyRow, Any, Row, Transaction};

use super::Store;

/// A push to a branch that only merges should change.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GuardedPush {
    pub event_id: String,
    pub project_id: i64,
    pub project_path: String,
    pub branch: String,
    pub before_sha: String,
    pub after_sha: String,
    pub username: Option<String>,
    pub pushed_at: i64,
}

/// One stored evidence record.
#[derive(Debug, Clone)]
pub struct EvidenceRow {
    pub seq: i64,
    pub event_id: String,
    pub project_path: String,
    pub mr_iid: i64,
    pub merge_commit_sha: Option<String>,
    pub merged_at: i64,
    pub record: String,
    pub prev_hash: String,
    pub hash: String,
}

/// What the last delivered compliance check covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckMark {
    pub checked_at: i64,
    /// The last evidence record it covered (none before any evidence, or from before
    /// checks kept it).
    pub through_seq: Option<i64>,
    pub through_hash: Option<String>,
}

/// A compliance check that reached its webhook.
#[derive(Debug, Clone)]
pub struct DeliveredCheck {
    pub checked_at: i64,
    pub since: i64,
    pub through_seq: Option<i64>,
    /// The hash of record `through_seq`.
    pub through_hash: Option<String>,
    pub merges: i64,
    pub deviations: i64,
    /// The guarded pushes it looked at; later checks skip them.
    pub push_event_ids: Vec<String>,
}

impl Store {
    pub async fn guarded_pushes_since(&self, since: i64) -> sqlx::Result<Vec<GuardedPush>> {
        let rows =
            sqlx::query("SELECT * FROM guarded_pushes WHERE pushed_at >= $1 ORDER BY pushed_at")
                .bind(since)
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(guarded_push_from_row).collect()
    }

    pub async fn evidence(&self, since: Option<i64>) -> sqlx::Result<Vec<EvidenceRow>> {
        let rows = sqlx::query(
            "SELECT * FROM evidence WHERE ($1 IS NULL OR merged_at >= $1) ORDER BY seq",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(evidence_from_row).collect()
    }

    /// Evidence recorded after record `seq`, oldest first.
    pub async fn evidence_after(&self, seq: i64) -> sqlx::Result<Vec<EvidenceRow>> {
        let rows = sqlx::query("SELECT * FROM evidence WHERE seq > $1 ORDER BY seq")
            .bind(seq)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(evidence_from_row).collect()
    }

    /// Guarded pushes of `from..before` that no delivered compliance check has covered.
    pub async fn unchecked_guarded_pushes(
        &self,
        from: i64,
        before: i64,
    ) -> sqlx::Result<Vec<GuardedPush>> {
        let rows = sqlx::query(
            "SELECT * FROM guarded_pushes WHERE checked_at IS NULL \
             AND pushed_at >= $1 AND pushed_at < $2 ORDER BY pushed_at",
        )
        .bind(from)
        .bind(before)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(guarded_push_from_row).collect()
    }

    /// What the last delivered compliance check covered.
    pub async fn last_compliance_check(&self) -> sqlx::Result<Option<CheckMark>> {
        let row = sqlx::query(
            "SELECT checked_at, through_seq, through_hash FROM compliance_checks \
             ORDER BY checked_at DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(CheckMark {
                checked_at: row.try_get("checked_at")?,
                through_seq: row.try_get("through_seq")?,
                through_hash: row.try_get("through_hash")?,
            })
        })
        .transpose()
    }

    /// The chain heads delivered checks saw, `(seq, hash)`, newest first.
    pub async fn delivered_heads(&self) -> sqlx::Result<Vec<(i64, String)>> {
        let rows = sqlx::query(
            "SELECT DISTINCT through_seq, through_hash FROM compliance_checks \
             WHERE through_seq > 0 AND through_hash IS NOT NULL ORDER BY through_seq DESC",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("through_seq")?, row.try_get("through_hash")?)))
            .collect()
    }

    /// Records a delivered compliance check and marks the pushes it covered, together.
    pub async fn record_compliance_check(&self, check: &DeliveredCheck) -> sqlx::Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO compliance_checks (checked_at, since, through_seq, through_hash, merges, \
             deviations) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (checked_at) DO NOTHING",
        )
        .bind(check.checked_at)
        .bind(check.since)
        .bind(check.through_seq)
        .bind(check.through_hash.as_deref())
        .bind(check.merges)
        .bind(check.deviations)
        .execute(&mut *tx)
        .await?;
        for event_id in &check.push_event_ids {
            sqlx::query("UPDATE guarded_pushes SET checked_at = $1 WHERE event_id = $2")
                .bind(check.checked_at)
                .bind(event_id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// True when the evidence of this merge event is recorded.
    pub async fn evidence_exists(&self, event_id: &str) -> sqlx::Result<bool> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM evidence WHERE event_id = $1")
            .bind(event_id)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// True when a merge was recorded with `sha` as its merge commit or head.
    pub async fn merge_explains(&self, project_path: &str, sha: &str) -> sqlx::Result<bool> {
        let pattern = format!("%\"head_sha\":\"{sha}\"%");
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM evidence WHERE project_path = $1 \
             AND (merge_commit_sha = $2 OR record LIKE $3)",
        )
        .bind(project_path)
        .bind(sha)
        .bind(pattern)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }
}

fn guarded_push_from_row(row: &AnyRow) -> sqlx::Result<GuardedPush> {
    Ok(GuardedPush {
        event_id: row.try_get("event_id")?,
        project_id: row.try_get("project_id")?,
        project_path: row.try_get("project_path")?,
        branch: row.try_get("branch")?,
        before_sha: row.try_get("before_sha")?,
        after_sha: row.try_get("after_sha")?,
        username: row.try_get("username")?,
        pushed_at: row.try_get("pushed_at")?,
    })
}

fn evidence_from_row(row: &AnyRow) -> sqlx::Result<EvidenceRow> {
    Ok(EvidenceRow {
        seq: row.try_get("seq")?,
        event_id: row.try_get("event_id")?,
        project_path: row.try_get("project_path")?,
        mr_iid: row.try_get("mr_iid")?,
        merge_commit_sha: row.try_get("merge_commit_sha")?,
        merged_at: row.try_get("merged_at")?,
        record: row.try_get("record")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// The last link of the chain, `(seq, hash)`, read inside the appending transaction.
pub(crate) async fn chain_head(
    tx: &mut Transaction<'_, Any>,
) -> sqlx::Result<Option<(i64, String)>> {
    let row = sqlx::query("SELECT seq, hash FROM evidence ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|row| Ok((row.try_get("seq")?, row.try_get("hash")?)))
        .transpose()
}

/// Appends one record; the primary key on `seq` makes two concurrent appends conflict, and
/// the loser retries on the new head.
pub(crate) async fn append_evidence(
    tx: &mut Transaction<'_, Any>,
    row: &EvidenceRow,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO evidence (seq, event_id, project_path, mr_iid, merge_commit_sha, merged_at, \
         record, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(row.seq)
    .bind(row.event_id.as_str())
    .bind(row.project_path.as_str())
    .bind(row.mr_iid)
    .bind(row.merge_commit_sha.as_deref())
    .bind(row.merged_at)
    .bind(row.record.as_str())
    .bind(row.prev_hash.as_str())
    .bind(row.hash.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn record_guarded_push(
    tx: &mut Transaction<'_, Any>,
    push: &GuardedPush,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO guarded_pushes (event_id, project_id, project_path, branch, before_sha, \
             after_sha, username, pushed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(push.event_id.as_str())
    .bind(push.project_id)
    .bind(push.project_path.as_str())
    .bind(push.branch.as_str())
    .bind(push.before_sha.as_str())
    .bind(push.after_sha.as_str())
    .bind(push.username.as_deref())
    .bind(push.pushed_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
