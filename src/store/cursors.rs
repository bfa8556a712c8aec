//! The per-project cursors over received events: which ones still wait to be planned,
//! and which planned ones still wait for the audit trail. One job per project walks each
//! cursor, oldest first, so events of a project are handled in order without a queue row
//! per event.

use sqlx::{Any, Row, Transaction};

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
        self.oldest_events("processed_at IS NULL", project, limit)
            .await
    }

    /// The oldest planned events of `project` the audit trail has not seen.
    pub async fn unaudited_events(
        &self,
        project: &str,
        limit: i64,
    ) -> sqlx::Result<Vec<PendingEvent>> {
        self.oldest_events(
            "audited_at IS NULL AND processed_at IS NOT NULL",
            project,
            limit,
        )
        .await
    }

    /// The oldest events of `project` in one cursor's state; `state` is the predicate of
    /// that cursor's partial index, so the query reads the index and nothing past it.
    async fn oldest_events(
        &self,
        state: &'static str,
        project: &str,
        limit: i64,
    ) -> sqlx::Result<Vec<PendingEvent>> {
        let sql = format!(
            "SELECT id, kind, body FROM events WHERE project = $1 AND {state} \
             ORDER BY received_at, id LIMIT $2"
        );
        let rows = sqlx::query(&sql)
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
}

/// Marks these events audited, in one statement.
pub(crate) async fn mark_audited(
    tx: &mut Transaction<'_, Any>,
    event_ids: &[&str],
) -> sqlx::Result<()> {
    if event_ids.is_empty() {
        return Ok(());
    }
    // The ids are `$1` to `$n`, the time `$n+1`.
    let mut sql = format!(
        "UPDATE events SET audited_at = ${} WHERE id IN ",
        event_ids.len() + 1
    );
    super::ingest::push_placeholders(&mut sql, 1, event_ids.len());
    let mut update = sqlx::query(&sql);
    for id in event_ids {
        update = update.bind(*id);
    }
    update = update.bind(now_ms());
    update.execute(&mut **tx).await?;
    Ok(())
}
