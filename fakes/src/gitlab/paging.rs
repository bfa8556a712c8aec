//! Offset pagination with GitLab's `X-*` headers.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::api::{ApiError, Params};

/// Page size when `per_page` is not given, as in GitLab.
const DEFAULT_PER_PAGE: usize = 20;
/// GitLab caps `per_page` at 100.
const MAX_PER_PAGE: usize = 100;

/// Answers one page of `items` (already in order) with `X-Page`, `X-Per-Page`, `X-Total`,
/// `X-Total-Pages`, `X-Next-Page` and `X-Prev-Page` (empty when there is none).
pub(crate) fn page(items: Vec<Value>, params: &Params) -> Result<Response, ApiError> {
    let number = |name: &str, default: usize| -> Result<usize, ApiError> {
        match params.get(name) {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse::<usize>()
                .map_err(|_| ApiError::param(&format!("{name} is invalid"))),
        }
    };
    let per_page = number("per_page", DEFAULT_PER_PAGE)?.clamp(1, MAX_PER_PAGE);
    let page = number("page", 1)?.max(1);

    let total = items.len();
    let total_pages = total.div_ceil(per_page).max(1);
    let shown: Vec<Value> = items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();

    let next = if page < total_pages {
        (page + 1).to_string()
    } else {
        String::new()
    };
    let prev = if page > 1 {
        (page - 1).to_string()
    } else {
        String::new()
    };
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("x-page", page.to_string());
    set("x-per-page", per_page.to_string());
    set("x-total", total.to_string());
    set("x-total-pages", total_pages.to_string());
    set("x-next-page", next);
    set("x-prev-page", prev);

    Ok((StatusCode::OK, headers, Json(Value::Array(shown))).into_response())
}
