//! GitLab's error answers and the request parameters the API reads.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// The largest request body the fake reads; a 1,000,000-character note fits with room.
pub(crate) const BODY_LIMIT_BYTES: usize = 8 * 1024 * 1024;

/// An error answer: a status and GitLab's JSON body for it.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

impl ApiError {
    /// `{"message": "<status> <what> Not Found"}`, e.g. `404 Project Not Found`.
    pub(crate) fn not_found(what: &str) -> ApiError {
        ApiError::message(StatusCode::NOT_FOUND, &format!("404 {what} Not Found"))
    }

    /// `{"message": text}` with any status.
    pub(crate) fn message(status: StatusCode, text: &str) -> ApiError {
        ApiError {
            status,
            body: json!({ "message": text }),
        }
    }

    /// 400 `{"error": text}`, as Grape reports a parameter that fails validation.
    pub(crate) fn param(text: &str) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: json!({ "error": text }),
        }
    }

    /// 400 `{"message": {field: [text]}}`, as a model validation failure is rendered.
    pub(crate) fn invalid(errors: BTreeMap<&str, Vec<String>>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: json!({ "message": errors }),
        }
    }

    /// 401 `{"message":"401 Unauthorized"}`.
    pub(crate) fn unauthorized() -> ApiError {
        ApiError::message(StatusCode::UNAUTHORIZED, "401 Unauthorized")
    }

    /// 403 `{"message":"403 Forbidden"}`.
    pub(crate) fn forbidden() -> ApiError {
        ApiError::message(StatusCode::FORBIDDEN, "403 Forbidden")
    }

    /// 404 `{"message":"404 Not found"}`, for records looked up by id (MRs, notes).
    pub(crate) fn record_not_found() -> ApiError {
        ApiError::message(StatusCode::NOT_FOUND, "404 Not found")
    }

    /// 404 `{"error":"404 Not Found"}` for a route the API does not have.
    pub(crate) fn no_route() -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            body: json!({ "error": "404 Not Found" }),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// Request parameters merged the way Grape sees them: query string first, then a JSON or
/// form body overriding it. JSON scalars are kept as their text (`12`, `true`).
#[derive(Debug, Default)]
pub(crate) struct Params(pub(crate) BTreeMap<String, String>);

impl Params {
    /// The value of `name`, if given.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The value of `name` if given and not blank, as Rails' `presence`.
    pub(crate) fn present(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    /// Parses query and body of a request.
    pub(crate) fn parse(
        query: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> Result<Params, ApiError> {
        let mut params = BTreeMap::new();
        if let Some(query) = query {
            params.extend(form_urlencoded::parse(query.as_bytes()).into_owned());
        }
        if body.is_empty() {
            return Ok(Params(params));
        }

        if content_type.starts_with("application/json") {
            let doc: Value = serde_json::from_slice(body)
                .map_err(|_| ApiError::param("The request body is not valid JSON"))?;
            let Value::Object(fields) = doc else {
                return Err(ApiError::param("The request body must be a JSON object"));
            };
            for (name, value) in fields {
                let text = match value {
                    Value::Null => continue,
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                params.insert(name, text);
            }
        } else if content_type.starts_with("application/x-www-form-urlencoded")
            || content_type.is_empty()
        {
            params.extend(form_urlencoded::parse(body).into_owned());
        }
        Ok(Params(params))
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Params, Response> {
        let query = req.uri().query().map(str::to_owned);
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Params::parse(query.as_deref(), &content_type, &body).map_err(IntoResponse::into_response)
    }
}
