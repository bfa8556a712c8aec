//! The HTTP edge: routes, shared state, and the layers every request passes (timeout,
//! concurrency limit, tracing).

mod admin;
mod body;
mod compliance;
mod error;
mod gitlab_hook;
mod health;
mod jenkins_hook;
mod sast_hook;
pub mod serve;
mod sonarqube_hook;

use std::{collections::HashMap, sync::Arc};

use axum::{
    routing::{get, post},
    Router,
};
use tower_http::{timeout::TimeoutLayer, trace::TraceLayer};

pub use error::ApiError;

use crate::{
    config::Config,
    gitlab::verify::Verifier,
    metrics::Metrics,
    store::{Ingest, Store},
};

/// What a hook handler returns.
type HookAnswer = Result<(axum::http::StatusCode, axum::Json<serde_json::Value>), ApiError>;

/// Counts and logs how a hook call ended: accepted or duplicate (the body's `status`), or
/// the rejection's code.
fn observe_hook(app: &AppState, source: &'static str, kind: &str, answer: &HookAnswer) {
    match answer {
        Ok((_, body)) => {
            let outcome = if body["status"] == "duplicate" {
                "duplicate"
            } else {
                "accepted"
            };
            app.metrics.webhook(source, kind, outcome);
        }
        Err(error) => {
            app.metrics.rejection(source, error.code);
            tracing::warn!(
                status = error.status.as_u16(),
                code = error.code,
                source,
                kind,
                "hook call rejected"
            );
        }
    }
}

/// The verifier of every configured project, built once at start.
pub struct Verifiers {
    pub default: Verifier,
    projects: HashMap<String, Verifier>,
}

impl Verifiers {
    pub fn new(config: &Config) -> Self {
        let gitlab = &config.gitlab;
        let projects = config
            .projects
            .iter()
            .map(|p| {
                (
                    p.gitlab.clone(),
                    Verifier::new(p.webhook_tokens(gitlab), p.signing_tokens(gitlab)),
                )
            })
            .collect();
        Self {
            default: Verifier::new(&gitlab.webhook_token, &gitlab.signing_token),
            projects,
        }
    }

    pub fn for_project(&self, path: &str) -> &Verifier {
        self.projects.get(path).unwrap_or(&self.default)
    }
}

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub ingest: Ingest,
    pub metrics: Arc<Metrics>,
    pub verifiers: Arc<Verifiers>,
}

pub fn router(state: AppState) -> Router {
    let server = &state.config.server;
    let timeout = TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        server.request_timeout,
    );
    let limit = tower::limit::GlobalConcurrencyLimitLayer::new(server.max_concurrent_requests);
    Router::new()
        .route("/hooks/gitlab", post(gitlab_hook::receive))
        .route("/hooks/jenkins", post(jenkins_hook::receive))
        .route("/hooks/jenkins/sast", post(sast_hook::receive))
        .route("/hooks/sonarqube", post(sonarqube_hook::receive))
        .route("/api/v1/compliance/report", get(compliance::report))
        .route("/api/v1/compliance/verify", get(compliance::verify))
        .route(
            "/api/v1/compliance/merge-requests/{project_id}/{iid}/refresh",
            post(compliance::refresh),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/events/{id}", get(admin::event))
        .route("/api/v1/events/{id}/replay", post(admin::replay_event))
        .route("/api/v1/dead-letters", get(admin::dead_letters))
        .route(
            "/api/v1/dead-letters/retry",
            post(admin::retry_dead_letters),
        )
        .fallback(|| async { ApiError::not_found("not_found", "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed here",
            )
        })
        .layer(timeout)
        .layer(limit)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
