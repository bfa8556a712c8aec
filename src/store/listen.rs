//! Waking idle workers across replicas: on PostgreSQL every transaction that enqueues jobs
//! sends `NOTIFY ci_bridge_jobs`, and each replica listens, so a job another replica
//! enqueued starts at once. Polling (every second) remains the fallback when the listening
//! connection is down.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::{Backend, Store};

/// The notification channel.
pub(crate) const CHANNEL: &str = "ci_bridge_jobs";
/// Pause before reconnecting a lost listening connection.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

impl Store {
    /// Relays job notifications to this process's workers until `shutdown`. Returns at
    /// once on SQLite, where only this process enqueues jobs.
    pub async fn listen_for_jobs(&self, shutdown: CancellationToken) {
        if self.backend != Backend::Postgres {
            return;
        }
        while !shutdown.is_cancelled() {
            match self.relay(&shutdown).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(%error, "job notifications interrupted; polling until they are back");
                    tokio::select! {
                        _ = tokio::time::sleep(RECONNECT_DELAY) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        }
    }

    async fn relay(&self, shutdown: &CancellationToken) -> sqlx::Result<()> {
        let mut listener = PgListener::connect(self.url.expose()).await?;
        listener.listen(CHANNEL).await?;
        loop {
            tokio::select! {
                notification = listener.recv() => {
                    notification?;
                    self.wake_workers();
                }
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
    }
}
