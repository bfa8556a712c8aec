//! The fake Jenkins' HTTP edge: one handler that authenticates, checks the crumb and
//! dispatches on the parsed path, all under the state lock and without awaiting.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;

use super::auth::{self, CRUMB_FIELD};
use super::json as docs;
use super::paths::{self, ItemRest, Route, RunRef, RunRest};
use super::reply::{self, html_error, method_not_allowed, not_found, Reply, Req};
use super::state::{CancelError, State};
use super::{trigger, Shared, TriggerRecord};

/// Request bodies above this many bytes are refused; Jenkins triggers are small forms.
const BODY_LIMIT_BYTES: usize = 2 * 1024 * 1024;

/// The Jenkins version every response advertises in `X-Jenkins`.
const JENKINS_VERSION: &str = "2.479.3";

/// The router serving every path through [`handle`].
pub(crate) fn router(shared: Shared) -> Router {
    Router::new()
        .fallback(handle)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(shared)
}

async fn handle(
    AxumState(shared): AxumState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = Instant::now();
    let mut st = shared.lock().expect("fake Jenkins state poisoned");
    st.request_count += 1;
    st.tick(now);

    let route = paths::parse(&st.settings.prefix, uri.path());
    let req = Req {
        method: &method,
        headers: &headers,
        params: request_params(&uri, &headers, &body),
        now,
    };
    let reply = respond(&mut st, &route, &req);

    if method == Method::POST {
        record_trigger(&mut st, &route, uri.path(), &req, &reply);
    }
    let mut response = reply.response;
    response
        .headers_mut()
        .insert("X-Jenkins", HeaderValue::from_static(JENKINS_VERSION));
    response
}

/// Query parameters, then form fields when the body is `application/x-www-form-urlencoded`.
fn request_params(uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        params.extend(form_urlencoded::parse(body).into_owned());
    }
    params
}

fn respond(st: &mut State, route: &Route, req: &Req) -> Reply {
    if let Some(status) = take_fault(st) {
        return html_error(status, "Injected fault").into();
    }
    if !auth::basic_auth_ok(st, req.headers) {
        return unauthorized(req.headers).into();
    }
    if *req.method == Method::POST && !auth::crumb_ok(st, req.headers, req.param(CRUMB_FIELD)) {
        let message = "No valid crumb was included in the request";
        return html_error(StatusCode::FORBIDDEN, message).into();
    }

    let get = *req.method == Method::GET;
    match route {
        Route::Root { api } => only_get(get, || {
            if *api {
                reply::json(&docs::root(st))
            } else {
                reply::page("Dashboard")
            }
        }),
        Route::CrumbIssuer => only_get(get, || crumb_issuer(st, req.headers)),
        Route::Queue => only_get(get, || reply::json(&docs::queue(st, req.now))),
        Route::QueueItem(id) => only_get(get, || match st.queue.get(id) {
            Some(item) => reply::json(&docs::queue_item(st, item, req.now)),
            None => not_found(),
        }),
        Route::CancelItem => cancel_item(st, req),
        Route::Item { name, rest } => item(st, name, rest, req),
        Route::NotFound => not_found().into(),
    }
}

fn only_get(get: bool, answer: impl FnOnce() -> Response) -> Reply {
    if get {
        answer().into()
    } else {
        method_not_allowed("GET").into()
    }
}

fn take_fault(st: &mut State) -> Option<StatusCode> {
    let (left, status) = st.faults?;
    st.faults = (left > 1).then(|| (left - 1, status));
    Some(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
}

fn unauthorized(headers: &HeaderMap) -> Response {
    let message = if headers.contains_key(header::AUTHORIZATION) {
        "Invalid password/token for user"
    } else {
        "Authentication required"
    };
    let mut response = html_error(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Jenkins\""),
    );
    response
}

/// `GET /crumbIssuer/api/json`: the crumb for the caller's session, starting one if needed.
fn crumb_issuer(st: &mut State, headers: &HeaderMap) -> Response {
    let (session, started) = match auth::live_session(st, headers) {
        Some(session) => (session, false),
        None => {
            let session = auth::new_session_id();
            st.sessions.insert(session.clone());
            (session, true)
        }
    };
    let doc = json!({
        "_class": "hudson.security.csrf.DefaultCrumbIssuer",
        "crumb": auth::crumb_for(st, &session),
        "crumbRequestField": CRUMB_FIELD,
    });

    let mut response = reply::json(&doc);
    if started {
        let path = if st.settings.prefix.is_empty() {
            "/"
        } else {
            st.settings.prefix.as_str()
        };
        let cookie = format!(
            "{}={session}; Path={path}; HttpOnly",
            st.settings.cookie_name
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    response
}

/// `POST /queue/cancelItem?id=N`: 204 if queued, 422 if it already left, 404 if unknown.
fn cancel_item(st: &mut State, req: &Req) -> Reply {
    if *req.method != Method::POST {
        return method_not_allowed("POST").into();
    }
    let Some(id) = req.param("id").and_then(|id| id.trim().parse::<u64>().ok()) else {
        return not_found().into();
    };
    let response = match st.cancel(id, req.now) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(CancelError::Unknown) => not_found(),
        Err(CancelError::AlreadyLeft) => html_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("Queue item {id} has already left the queue"),
        ),
    };
    response.into()
}

fn item(st: &mut State, name: &str, rest: &ItemRest, req: &Req) -> Reply {
    let is_job = st.jobs.contains_key(name);
    if !is_job && !docs::is_folder(st, name) {
        return not_found().into();
    }
    let get = *req.method == Method::GET;
    let post = *req.method == Method::POST;

    match rest {
        ItemRest::Page => only_get(get, || reply::page(name)),
        ItemRest::Api => only_get(get, || match st.jobs.get(name) {
            Some(job) => reply::json(&docs::job(st, name, job)),
            None => reply::json(&docs::folder(st, name)),
        }),
        _ if !is_job => not_found().into(),
        ItemRest::Build | ItemRest::BuildWithParameters if !post => {
            method_not_allowed("POST").into()
        }
        ItemRest::Build => trigger::build(st, name, req),
        ItemRest::BuildWithParameters => trigger::build_with_parameters(st, name, req),
        ItemRest::Run { number, rest } => run(st, name, *number, *rest, req),
    }
}

fn run(st: &mut State, name: &str, number: RunRef, rest: RunRest, req: &Req) -> Reply {
    let job = st.jobs.get(name).expect("caller checked the job exists");
    let build = match number {
        RunRef::Number(n) => job.builds.iter().find(|b| b.number == n),
        RunRef::LastBuild => job.builds.last(),
    };
    let Some(build) = build else {
        return not_found().into();
    };
    let number = build.number;
    let get = *req.method == Method::GET;

    match rest {
        RunRest::Page => only_get(get, || reply::page(&format!("{name} #{number}"))),
        RunRest::Api => only_get(get, || reply::json(&docs::run(st, name, build))),
        RunRest::Stop if *req.method != Method::POST => method_not_allowed("POST").into(),
        RunRest::Stop => {
            st.stop(name, number, req.now);
            reply::redirect(StatusCode::FOUND, &st.build_url(name, number)).into()
        }
    }
}

fn record_trigger(st: &mut State, route: &Route, raw_path: &str, req: &Req, reply: &Reply) {
    let (job, endpoint) = match route {
        Route::Item {
            name,
            rest: ItemRest::Build,
        } => (name.clone(), "build"),
        Route::Item {
            name,
            rest: ItemRest::BuildWithParameters,
        } => (name.clone(), "buildWithParameters"),
        _ if raw_path.ends_with("/buildWithParameters") => {
            (raw_path.to_owned(), "buildWithParameters")
        }
        _ if raw_path.ends_with("/build") => (raw_path.to_owned(), "build"),
        _ => return,
    };

    let mut params = BTreeMap::new();
    for (name, value) in &req.params {
        params.entry(name.clone()).or_insert_with(|| value.clone());
    }
    st.triggers.push(TriggerRecord {
        job,
        endpoint: endpoint.to_owned(),
        params,
        status: reply.response.status().as_u16(),
        queue_id: reply.queue_id,
    });
}
