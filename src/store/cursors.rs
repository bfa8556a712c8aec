//! The per-project cursors over received events: which ones still wait to be planned,
//! and which planned ones still wait for the audit trail. One job per project walks each
//! cursor, oldest first, so events of a project are handled in order without a queue row
//! per event.

use sqlx::Row;

use super::{now_ms, JobKind, NewJob, Store};

/// An event waiting to be planned.
pub struct PendingEvent {
    pub id: String,
    pub kind: String,
    pub body: Vec<u8>,
}

/// The job that plans a project's events; enqueued (coalesced) with every event.
pub fn plan_job(project: &str) -> NewJob {
    let payload = serde_json::json!({ "project": project }).to_string();
    NewJob::now(JobKind::ProcessEvent, payload).unique(format!("plan:{project}"))
}

/// The job that feeds a project's planned events to the audit trail.
pub fn audit_job(project: &str) -> NewJob {
    let payload = serde_json::json!({ "project": project }).to_string();
    NewJob::now(JobKind::Audit, payload).unique(format!("audit:{project}"))
}

impl Store {
    /// The oldest events of `project` not planned yet.
    pub async fn unplanned_events(
        &self,
        project: &str,
        limit: i64,
    ) -> sqlx::Result<Vec<PendingEvent>> {
        let rows = sqlx::query(
            "SELECT id, kind, body FROM events WHERE project = $1 AND processed_at IS NULL \
             ORDER BY received_at, id LIMIT $2",
        )
        .bind(project)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PendingEvent {
                    id: row.try_get("id")?,
                    kind: row.try_get("kind")?,
                    body: row.try_get("body")?,
                })
            })
            .collect()
    }

    /// The oldest planned events of `project` the audit trail has not seen.
    pub async fn unaudited_events(&self, project: &str, limit: i64) -> sqlx::Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT id FROM events WHERE project = $1 AND audited_at IS NULL \
             AND processed_at IS NOT NULL ORDER BY received_at, id LIMIT $2",
        )
        .bind(project)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|row| row.try_get("id")).collect()
    }

    pub async fn mark_audited(&self, event_id: &str) -> sqlx::Result<()> {
        sqlx::query("UPDATE events SET audited_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(event_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
