//! The application: built from a configuration and a bound listener, so tests run exactly
//! what production runs (on a port-0 listener).

use std::{sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    config::Config,
    gitlab::GitLabClient,
    http::{self, AppState, Verifiers},
    jenkins::JenkinsClient,
    metrics::Metrics,
    store::{Backend, Ingest, Store},
    worker::{self, Services},
};

pub struct Application {
    listener: TcpListener,
    state: AppState,
    services: Arc<Services>,
    shutdown: CancellationToken,
}

/// Workers beyond this on SQLite contend for its one write lock (measured: a burst drained
/// at 85 events a second with 4, 6.4 with 8).
const SQLITE_WORKERS: usize = 4;

impl Application {
    /// Opens the database (running migrations) and prepares the server and the workers.
    pub async fn build(config: Config, listener: TcpListener) -> anyhow::Result<Self> {
        let config = Arc::new(config);
        let store = Store::connect(&config.database.url, config.database.max_connections).await?;
        store.release_own_leases_on_start().await?;
        if store.backend() == Backend::Sqlite && config.worker.concurrency > SQLITE_WORKERS {
            tracing::warn!(
                workers = config.worker.concurrency,
                "more than {SQLITE_WORKERS} workers on SQLite wait on its single write lock \
                 and drain a backlog more slowly, not faster; use PostgreSQL to scale out"
            );
        }
        crate::audit::schedule::seed(&store, &config.compliance).await?;
        let metrics = Arc::new(Metrics::default());
        let services = Arc::new(Services {
            config: config.clone(),
            store: store.clone(),
            gitlab: GitLabClient::new(&config.gitlab),
            jenkins: JenkinsClient::new(&config.jenkins),
            metrics: metrics.clone(),
        });
        let state = AppState {
            verifiers: Arc::new(Verifiers::new(&config)),
            ingest: Ingest::start(store.clone())?,
            config,
            store,
            metrics,
        };
        Ok(Self {
            listener,
            state,
            services,
            shutdown: CancellationToken::new(),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// A token that stops the application when cancelled (tests use it; `serve` cancels
    /// it on SIGTERM or SIGINT).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub fn store(&self) -> Store {
        self.state.store.clone()
    }

    /// Serves until the shutdown token fires: then stops accepting, lets in-flight
    /// requests and jobs finish for up to `server.shutdown_timeout`, and returns. Jobs not
    /// finished stay in the queue for the next start.
    pub async fn run(self) -> anyhow::Result<()> {
        let grace: Duration = self.state.config.server.shutdown_timeout;
        let workers = worker::spawn(self.services.clone(), self.shutdown.clone());
        let store = self.state.store.clone();
        let listening = self.shutdown.clone();
        tokio::spawn(async move { store.listen_for_jobs(listening).await });
        let router = http::router(self.state.clone());
        let shutdown = self.shutdown.clone();
        let header_timeout = self.state.config.server.header_timeout;
        let server = tokio::spawn(http::serve::serve(
            self.listener,
            router,
            shutdown,
            header_timeout,
            grace,
        ));

        self.shutdown.cancelled().await;
        let drained = tokio::time::timeout(grace, async {
            let _ = server.await;
            for handle in workers {
                let _ = handle.await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "shutdown grace ran out; unfinished jobs stay queued"
            );
        }
        tracing::info!("stopped");
        Ok(())
    }
}
