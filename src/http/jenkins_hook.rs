//! `POST /hooks/jenkins`: the result a job's post-build step reports.

use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode},
    Json,
};

use super::{
    body::{read_limited, require_json, CALLBACK_MAX_BODY},
    error::ApiError,
    AppState,
};
use crate::{
    jenkins::callback::{Callback, RESULTS},
    worker::{finish_build, FinishOutcome},
};

pub async fn receive(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let outcome = handle(&app, &headers, body).await;
    super::observe_hook(&app, "jenkins", "callback", &outcome);
    outcome
}

async fn handle(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    super::body::require_bearer(
        headers,
        &app.config.jenkins.callback_token,
        "callback_token",
    )?;
    require_json(headers)?;
    let body = read_limited(headers, body, CALLBACK_MAX_BODY).await?;
    let callback: Callback = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_payload", format!("callback body: {e}")))?;
    if !RESULTS.contains(&callback.result.as_str()) {
        return Err(ApiError::bad_request(
            "invalid_result",
            format!("result must be one of {}", RESULTS.join(", ")),
        ));
    }
    let Some(build) = app.store.build(&callback.build_id).await? else {
        return Err(ApiError::not_found(
            "unknown_build",
            "no build has this build_id",
        ));
    };
    let outcome = finish_build(
        &app.store,
        &app.config,
        &build,
        &callback.result,
        callback.number(),
        None,
    )
    .await
    .map_err(ApiError::unavailable)?;
    let status = match outcome {
        FinishOutcome::Recorded => "recorded",
        FinishOutcome::AlreadyFinished => "duplicate",
    };
    tracing::info!(build = %build.id, result = %callback.result, status, "jenkins callback");
    Ok((
        StatusCode::OK,
        Json(serde_json::json!({ "status": status, "build_id": build.id })),
    ))
}
