//! Dead letters and replays: the jobs that gave up, brought back to life by hand
//! (`ci-bridge replay EVENT_ID`, the admin API).

use sqlx::Row;

use super::{
    now_ms,
    queue::{insert_jobs, DeadJob},
    Store,
};

impl Store {
    pub async fn dead_letters(&self) -> sqlx::Result<Vec<DeadJob>> {
        let rows = sqlx::query(
            "SELECT id, kind, payload, attempts, last_error, created_at FROM jobs \
             WHERE dead = 1 ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeadJob {
                    id: row.try_get("id")?,
                    kind: row.try_get("kind")?,
                    payload: row.try_get("payload")?,
                    attempts: row.try_get("attempts")?,
                    last_error: row.try_get("last_error")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Brings every dead letter back to life. Returns how many were revived.
    pub async fn revive_all(&self) -> sqlx::Result<u64> {
        let revived =
            sqlx::query("UPDATE jobs SET dead = 0, attempts = 0, run_at = $1 WHERE dead = 1")
                .bind(now_ms())
                .execute(self.pool())
                .await?
                .rows_affected();
        self.wake_workers();
        Ok(revived)
    }

    /// Runs one event again: its dead letters (its own, its builds', their statuses') come
    /// back to life; when it has none, it is planned anew (a build it already has is then
    /// recognised as such, so nothing is built twice). `None` when no such event exists.
    pub async fn replay_event(&self, event_id: &str) -> sqlx::Result<Option<u64>> {
        // Read before the write transaction takes the SQLite lock (and a connection).
        let Some(event) = self.event(event_id).await? else {
            return Ok(None);
        };
        let builds = self.builds_for_event(event_id).await?;
        let mut needles = vec![event_id.to_owned()];
        for build in builds {
            needles.push(super::StatusKey::of(&build).job_key());
            needles.push(build.id);
        }
        let mut tx = self.begin().await?;
        let mut revived = 0;
        for needle in &needles {
            revived += sqlx::query(
                "UPDATE jobs SET dead = 0, attempts = 0, run_at = $1 \
                 WHERE dead = 1 AND (payload LIKE $2 OR unique_key = $3)",
            )
            .bind(now_ms())
            .bind(format!("%{needle}%"))
            .bind(needle.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        if revived == 0 {
            let project = event.project.clone().unwrap_or_default();
            sqlx::query("UPDATE events SET processed_at = NULL WHERE id = $1")
                .bind(event_id)
                .execute(&mut *tx)
                .await?;
            insert_jobs(&mut tx, &[&super::plan_job(&project)]).await?;
        }
        tx.commit().await?;
        self.wake_workers();
        Ok(Some(revived))
    }
}
