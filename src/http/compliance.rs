//! The compliance API under `/api/v1/compliance` (admin token): the report of merges and
//! deviations, the evidence chain's check, and an on-demand re-read of a merge request's
//! approvals.

use std::collections::HashMap;

use axum::{
    extract::{Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};

use super::{
    admin::authorize,
    error::{ApiError, JsonPath},
    AppState,
};
use crate::audit::{
    self,
    chain::{self, ChainState},
    formats, report,
};

/// `GET /api/v1/compliance/report?since=7d&format=json|markdown|csv`.
pub async fn report(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let since = query.get("since").map_or("7d", String::as_str);
    let window =
        report::parse_since(since).map_err(|e| ApiError::bad_request("invalid_parameter", e))?;
    let format = query.get("format").map_or("json", String::as_str);
    let format = formats::Format::parse(format).ok_or_else(|| {
        ApiError::bad_request("invalid_parameter", "format must be json, markdown or csv")
    })?;
    let report = report::build(&app.store, window, since).await?;
    let body = formats::render(&report, format);
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

/// `GET /api/v1/compliance/verify?anchor=SEQ:HASH`: the evidence chain, checked as
/// `audit verify` does, against the given head and every head a delivered check kept.
pub async fn verify(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<ChainState>, ApiError> {
    authorize(&app, &headers)?;
    let anchors =
        match query.get("anchor") {
            Some(text) => vec![chain::Head::parse(text)
                .map_err(|e| ApiError::bad_request("invalid_parameter", e))?],
            None => Vec::new(),
        };
    Ok(Json(chain::check(&app.store, &anchors).await?))
}

/// `POST /api/v1/compliance/merge-requests/{project_id}/{iid}/refresh`: re-reads the
/// approvals and commits from GitLab and updates the four-eyes status and the note.
pub async fn refresh(
    State(app): State<AppState>,
    headers: HeaderMap,
    JsonPath((project_id, iid)): JsonPath<(String, String)>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    authorize(&app, &headers)?;
    let number = |text: &str, name: &str| {
        text.parse::<i64>().map_err(|_| {
            ApiError::bad_request("invalid_parameter", format!("{name} must be an integer"))
        })
    };
    let (project_id, iid) = (number(&project_id, "project_id")?, number(&iid, "iid")?);
    if app.store.merge_request(project_id, iid).await?.is_none() {
        return Err(ApiError::not_found(
            "unknown_merge_request",
            "no event of this merge request was received",
        ));
    }
    app.store
        .enqueue(&[audit::mr_check_job(project_id, iid)])
        .await
        .map_err(ApiError::unavailable)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "status": "queued" })),
    ))
}
