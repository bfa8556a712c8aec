//! The admin API under `/api/v1`, for on-call engineers: what happened to an event, and
//! the dead letters. Guarded by `server.admin_token`; off when none is configured.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    Json,
};

use super::{
    error::{ApiError, JsonPath},
    AppState,
};

pub(super) fn authorize(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(tokens) = &app.config.server.admin_token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_api_disabled",
            "the admin API is off; set server.admin_token to enable it",
        ));
    };
    super::body::require_bearer(headers, tokens, "admin_token")
}

/// `GET /api/v1/events/{id}`: the event, its decisions with their reasons, its builds and
/// their statuses.
pub async fn event(
    State(app): State<AppState>,
    headers: HeaderMap,
    JsonPath(id): JsonPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&app, &headers)?;
    let Some(event) = app.store.event(&id).await? else {
        return Err(ApiError::not_found("unknown_event", "no event has this id"));
    };
    let builds = app.store.builds_for_event(&id).await?;
    let mut statuses = Vec::new();
    for build in &builds {
        for row in app
            .store
            .statuses_for_sha(build.gitlab_project_id, &build.sha)
            .await?
        {
            if row.key.name == build.status_name && row.build_id == build.id {
                statuses.push(serde_json::json!({
                    "project_id": row.key.project_id,
                    "sha": row.key.sha,
                    "name": row.key.name,
                    "ref": row.git_ref,
                    "posted": rank_name(row.posted_rank, row.final_state.as_ref().map(|f| f.0.as_str())),
                    "wanted": rank_name(row.wanted_rank, row.final_state.as_ref().map(|f| f.0.as_str())),
                    "last_error": row.last_error,
                }));
            }
        }
    }
    Ok(Json(
        serde_json::json!({ "event": event, "builds": builds, "statuses": statuses }),
    ))
}

fn rank_name(rank: i64, final_state: Option<&str>) -> Option<String> {
    match rank {
        1 => Some("pending".into()),
        2 => Some("running".into()),
        3 => Some(final_state.unwrap_or("failed").into()),
        _ => None,
    }
}

/// `GET /api/v1/dead-letters`.
pub async fn dead_letters(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&app, &headers)?;
    let jobs = app.store.dead_letters().await?;
    Ok(Json(serde_json::json!({ "dead_letters": jobs })))
}

/// `POST /api/v1/dead-letters/retry`: every dead letter runs again.
pub async fn retry_dead_letters(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&app, &headers)?;
    let revived = app.store.revive_all().await?;
    Ok(Json(serde_json::json!({ "retried": revived })))
}

/// `POST /api/v1/events/{id}/replay`: the event's dead letters run again; an event without
/// any is planned anew (nothing it already built is built twice).
pub async fn replay_event(
    State(app): State<AppState>,
    headers: HeaderMap,
    JsonPath(id): JsonPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&app, &headers)?;
    match app.store.replay_event(&id).await? {
        Some(revived) => Ok(Json(
            serde_json::json!({ "event_id": id, "revived_jobs": revived, "replanned": revived == 0 }),
        )),
        None => Err(ApiError::not_found("unknown_event", "no event has this id")),
    }
}
