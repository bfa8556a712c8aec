//! The fake GitLab's router and the layers around it: request counting, the status-post
//! log, fault injection and token authentication, outermost first.

use axum::body::{to_bytes, Body};
use axum::extract::{DefaultBodyLimit, Request, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use percent_encoding::percent_decode_str;

use super::api::{ApiError, Params, BODY_LIMIT_BYTES};
use super::records::StatusPost;
use super::{mrs, notes, statuses, Shared};

const MR: &str = "/api/v4/projects/{id}/merge_requests/{iid}";

/// The REST API under `/api/v4`, answering unknown routes with GitLab's 404.
pub(crate) fn router(shared: Shared) -> Router {
    Router::new()
        .route("/api/v4/user", get(mrs::current_user))
        .route("/api/v4/projects/{id}", get(mrs::project))
        .route(
            "/api/v4/projects/{id}/statuses/{sha}",
            post(statuses::create),
        )
        .route(
            "/api/v4/projects/{id}/repository/commits/{sha}/statuses",
            get(statuses::list),
        )
        .route(MR, get(mrs::show))
        .route(&format!("{MR}/approvals"), get(mrs::approvals))
        .route(&format!("{MR}/commits"), get(mrs::commits))
        .route(&format!("{MR}/notes"), get(notes::list).post(notes::create))
        .route(
            &format!("{MR}/notes/{{note_id}}"),
            get(notes::show).put(notes::update).delete(notes::delete),
        )
        .route_layer(from_fn_with_state(shared.clone(), require_token))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(shared.clone(), inject_faults))
        .layer(from_fn_with_state(shared.clone(), record_status_posts))
        .layer(from_fn_with_state(shared.clone(), count_requests))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(shared)
}

async fn no_route() -> Response {
    ApiError::no_route().into_response()
}

async fn method_not_allowed() -> Response {
    let body = serde_json::json!({"error": "405 Method Not Allowed"});
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

async fn count_requests(
    AxumState(shared): AxumState<Shared>,
    req: Request,
    next: Next,
) -> Response {
    shared
        .lock()
        .expect("fake GitLab state poisoned")
        .request_count += 1;
    next.run(req).await
}

/// `PRIVATE-TOKEN: <token>` or `Authorization: Bearer <token>`, else 401.
async fn require_token(AxumState(shared): AxumState<Shared>, req: Request, next: Next) -> Response {
    let allowed = {
        let st = shared.lock().expect("fake GitLab state poisoned");
        token_ok(req.headers(), &st.token)
    };
    if !allowed {
        return ApiError::unauthorized().into_response();
    }
    next.run(req).await
}

fn token_ok(headers: &HeaderMap, token: &str) -> bool {
    let private = headers
        .get("private-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == token);
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|v| v.trim() == token);
    private || bearer
}

/// Answers API requests with an injected status while faults are armed.
async fn inject_faults(AxumState(shared): AxumState<Shared>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/api/v4/") {
        return next.run(req).await;
    }
    let fault = shared
        .lock()
        .expect("fake GitLab state poisoned")
        .take_fault();
    let Some(fault) = fault else {
        return next.run(req).await;
    };

    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let text = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let mut response = ApiError::message(status, &text).into_response();
    if let Some(seconds) = fault.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Logs every `POST …/statuses/:sha` with its parameters and the answer it got.
async fn record_status_posts(
    AxumState(shared): AxumState<Shared>,
    req: Request,
    next: Next,
) -> Response {
    let target = (req.method() == Method::POST)
        .then(|| status_post_target(req.uri().path()))
        .flatten();
    let Some((project, sha)) = target else {
        return next.run(req).await;
    };

    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, BODY_LIMIT_BYTES).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let params = Params::parse(parts.uri.query(), content_type, &bytes).unwrap_or_default();
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;

    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, BODY_LIMIT_BYTES).await.unwrap_or_default();
    let name = params
        .present("name")
        .or_else(|| params.present("context"))
        .unwrap_or("default");
    let post = StatusPost {
        project,
        sha,
        state: params.get("state").map(str::to_owned),
        name: name.to_owned(),
        ref_: params.get("ref").map(str::to_owned),
        target_url: params.get("target_url").map(str::to_owned),
        description: params.get("description").map(str::to_owned),
        status: parts.status.as_u16(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    };
    shared
        .lock()
        .expect("fake GitLab state poisoned")
        .status_posts
        .push(post);
    Response::from_parts(parts, Body::from(bytes))
}

/// The decoded `(:id, :sha)` of a `/api/v4/projects/:id/statuses/:sha` path.
fn status_post_target(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/api/v4/projects/")?;
    let (project, sha) = rest.split_once("/statuses/")?;
    if project.contains('/') || sha.contains('/') || sha.is_empty() {
        return None;
    }
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    Some((decode(project), decode(sha)))
}
