//! `POST /hooks/sonarqube`: SonarQube's webhook at the end of an analysis.
//!
//! SonarQube sends each delivery once and never retries, so the delivery is verified on
//! its raw body, stored, and answered at once; the status is posted by a job.

use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode},
    Json,
};
use sha2::{Digest, Sha256};

use super::{
    body::{read_limited, require_json, single_bytes, CALLBACK_MAX_BODY},
    error::ApiError,
    AppState,
};
use crate::{sonarqube, store::QualitySource};

/// The header SonarQube signs its deliveries with.
pub const SIGNATURE_HEADER: &str = "x-sonar-webhook-hmac-sha256";

pub async fn receive(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let outcome = handle(&app, &headers, body).await;
    super::observe_hook(&app, "sonarqube", "analysis", &outcome);
    outcome
}

async fn handle(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let Some(sonar) = &app.config.sonarqube else {
        return Err(ApiError::not_found(
            "not_found",
            "SonarQube webhooks are not configured ([sonarqube] webhook_secret)",
        ));
    };
    require_json(headers)?;
    let body = read_limited(headers, body, CALLBACK_MAX_BODY).await?;
    let signature = single_bytes(headers, SIGNATURE_HEADER)?
        .ok_or_else(|| ApiError::unauthorized("X-Sonar-Webhook-HMAC-SHA256 is required"))?;
    if !sonarqube::verify(&sonar.webhook_secret, &body, signature) {
        return Err(ApiError::unauthorized("the signature does not match"));
    }

    let analysis: sonarqube::Analysis = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_payload", format!("analysis: {e}")))?;
    let Some(project) = app.config.project_for_sonarqube(&analysis.project.key) else {
        return Err(ApiError::not_found(
            "unknown_project",
            format!(
                "SonarQube project {} is not mapped to a GitLab project",
                analysis.project.key
            ),
        ));
    };
    let dedup = format!("sonarqube:{}", hex::encode(Sha256::digest(&body)));
    let (id, inserted) = app
        .store
        .record_quality_result(
            QualitySource::SonarQube,
            &dedup,
            Some(&project.gitlab),
            None,
            &body,
        )
        .await
        .map_err(ApiError::unavailable)?;
    tracing::info!(result = %id, project = %project.gitlab, key = %analysis.project.key,
        revision = analysis.revision.as_deref().unwrap_or("-"), inserted, "sonarqube analysis");
    let (code, status) = if inserted {
        (StatusCode::ACCEPTED, "accepted")
    } else {
        (StatusCode::OK, "duplicate")
    };
    Ok((
        code,
        Json(serde_json::json!({ "status": status, "result_id": id })),
    ))
}
