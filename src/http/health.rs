//! Health and metrics: `/healthz` (the process serves), `/readyz` (the database answers),
//! `/metrics` (Prometheus text).

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::IntoResponse,
    Json,
};

use super::AppState;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

pub async fn readyz(State(app): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    if app.store.ping().await {
        (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "status": "unavailable",
                "error": "database_unavailable",
                "message": "the database did not answer a query within 2 s",
            })),
        )
    }
}

pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let stats = app.store.queue_stats().await.unwrap_or_default();
    let gauges = [
        (
            "ci_bridge_queue_ready_jobs",
            "Jobs ready to run.",
            stats.ready as f64,
        ),
        (
            "ci_bridge_queue_waiting_jobs",
            "Jobs waiting for a later time (polls, retries).",
            stats.waiting as f64,
        ),
        (
            "ci_bridge_queue_dead_jobs",
            "Dead letters.",
            stats.dead as f64,
        ),
        (
            "ci_bridge_queue_oldest_ready_seconds",
            "Age of the oldest ready job.",
            stats.oldest_ready_age_ms as f64 / 1000.0,
        ),
    ];
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(&gauges),
    )
}
