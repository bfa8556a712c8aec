//! The parsed request a handler sees and the kinds of response Jenkins gives.

use std::time::Instant;

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// A request with its query and form parameters decoded, as a servlet sees them.
pub(crate) struct Req<'a> {
    pub(crate) method: &'a Method,
    pub(crate) headers: &'a HeaderMap,
    /// Query parameters first, then `application/x-www-form-urlencoded` body fields.
    pub(crate) params: Vec<(String, String)>,
    pub(crate) now: Instant,
}

impl Req<'_> {
    /// Every value given for `name`, query first.
    pub(crate) fn values(&self, name: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value given for `name`.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.values(name).first().copied()
    }
}

/// A response plus the queue item a trigger created or merged into, for the trigger log.
pub(crate) struct Reply {
    pub(crate) response: Response,
    pub(crate) queue_id: Option<u64>,
}

impl From<Response> for Reply {
    fn from(response: Response) -> Reply {
        Reply {
            response,
            queue_id: None,
        }
    }
}

/// An HTML error page in the style of Jenkins/Jetty, carrying `message`.
pub(crate) fn html_error(status: StatusCode, message: &str) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let code = status.as_u16();
    let body = format!(
        "<html><head><title>Error {code} {reason}</title></head>\
         <body><h2>HTTP ERROR {code} {reason}</h2><p>{message}</p></body></html>\n"
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html;charset=utf-8")],
        body,
    )
        .into_response()
}

/// 404 with Jenkins' generic page.
pub(crate) fn not_found() -> Response {
    html_error(StatusCode::NOT_FOUND, "Not Found")
}

/// 405 with the allowed method.
pub(crate) fn method_not_allowed(allow: &'static str) -> Response {
    let mut response = html_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// A JSON document with Jenkins' content type.
pub(crate) fn json(value: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
        value.to_string(),
    )
        .into_response()
}

/// A small HTML page standing in for a Jenkins UI page.
pub(crate) fn page(title: &str) -> Response {
    let body = format!("<html><head><title>{title} [Jenkins]</title></head><body></body></html>\n");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html;charset=utf-8")],
        body,
    )
        .into_response()
}

/// A redirect with an empty body, as `sendRedirect` produces.
pub(crate) fn redirect(status: StatusCode, location: &str) -> Response {
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}
