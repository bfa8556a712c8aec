//! `POST /hooks/jenkins/sast?build_id=…`: a Jenkins build's GitLab SAST report
//! (`gl-sast-report.json`), authenticated like the build callback.

use std::collections::HashMap;

use axum::{
    body::Body,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    Json,
};
use sha2::{Digest, Sha256};

use super::{
    body::{read_limited, require_json, GITLAB_MAX_BODY},
    error::ApiError,
    AppState,
};
use crate::{sast, store::QualitySource};

pub async fn receive(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let outcome = handle(&app, &query, &headers, body).await;
    super::observe_hook(&app, "jenkins", "sast", &outcome);
    outcome
}

async fn handle(
    app: &AppState,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    super::body::require_bearer(
        headers,
        &app.config.jenkins.callback_token,
        "callback_token",
    )?;
    require_json(headers)?;
    let Some(build_id) = query.get("build_id").filter(|id| !id.is_empty()) else {
        return Err(ApiError::bad_request(
            "missing_parameter",
            "the build_id query parameter (CI_BRIDGE_BUILD_ID) is required",
        ));
    };
    let body = read_limited(headers, body, GITLAB_MAX_BODY).await?;
    sast::parse(&body).map_err(|e| ApiError::bad_request("invalid_payload", e.to_string()))?;
    let Some(build) = app.store.build(build_id).await? else {
        return Err(ApiError::not_found(
            "unknown_build",
            "no build has this build_id",
        ));
    };

    let mut digest = Sha256::new();
    digest.update(build.id.as_bytes());
    digest.update(b"\n");
    digest.update(&body);
    let dedup = format!("sast:{}", hex::encode(digest.finalize()));
    let (id, inserted) = app
        .store
        .record_quality_result(
            QualitySource::Sast,
            &dedup,
            Some(&build.project_path),
            Some(&build.id),
            &body,
        )
        .await
        .map_err(ApiError::unavailable)?;
    tracing::info!(result = %id, build = %build.id, sha = %build.sha, inserted, "sast report");
    let (code, status) = if inserted {
        (StatusCode::ACCEPTED, "accepted")
    } else {
        (StatusCode::OK, "duplicate")
    };
    Ok((
        code,
        Json(serde_json::json!({ "status": status, "result_id": id, "build_id": build.id })),
    ))
}
