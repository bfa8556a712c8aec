//! Reading a request body as raw bytes, under a size cap, after checking its content type.
//! Verification needs the exact bytes that were sent, so nothing is parsed here.

use axum::{
    body::Body,
    http::{header, HeaderMap, StatusCode},
};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};

use super::error::ApiError;

/// GitLab does not send a webhook body larger than this (`REQUEST_BODY_SIZE_LIMIT`).
pub const GITLAB_MAX_BODY: usize = 25 * 1024 * 1024;
/// Callbacks from Jenkins carry a few hundred bytes.
pub const CALLBACK_MAX_BODY: usize = 1024 * 1024;

/// 415 unless the body is declared as JSON.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    // Two Content-Type headers are as unacceptable as a wrong one.
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let content_type = match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().unwrap_or(""),
        _ => "",
    };
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be application/json",
        ))
    }
}

/// The whole body, or 413 once it passes `limit` bytes.
pub async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(ApiError::bad_request(
            "body_unreadable",
            "the request body could not be read",
        )),
    }
}

/// The one value of a header; 400 when it is sent twice (an ambiguous credential is refused
/// rather than guessed at), `None` when absent.
pub fn single<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::bad_request(
            "duplicate_header",
            format!("header {name} was sent more than once"),
        ));
    }
    first.to_str().map(Some).map_err(|_| {
        ApiError::bad_request(
            "invalid_header",
            format!("header {name} is not visible ASCII"),
        )
    })
}

/// Like [`single`], as raw bytes (a token is compared byte for byte, whatever it holds).
pub fn single_bytes<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a [u8]>, ApiError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::bad_request(
            "duplicate_header",
            format!("header {name} was sent more than once"),
        ));
    }
    Ok(Some(first.as_bytes()))
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case).
pub fn bearer(headers: &HeaderMap) -> Result<Option<&[u8]>, ApiError> {
    let Some(value) = single_bytes(headers, "authorization")? else {
        return Ok(None);
    };
    let scheme_len = "Bearer ".len();
    if value.len() > scheme_len && value[..scheme_len].eq_ignore_ascii_case(b"Bearer ") {
        Ok(Some(&value[scheme_len..]))
    } else {
        Ok(None)
    }
}

/// 401 unless the request carries `Authorization: Bearer <one of tokens>`; `name` is the
/// configuration key the token comes from, for the message.
pub fn require_bearer(
    headers: &HeaderMap,
    tokens: &crate::config::Secrets,
    name: &str,
) -> Result<(), ApiError> {
    let presented = bearer(headers)?.ok_or_else(|| {
        ApiError::unauthorized(format!("Authorization: Bearer <{name}> is required"))
    })?;
    if tokens.any_matches(presented) {
        Ok(())
    } else {
        Err(ApiError::unauthorized(format!("the {name} does not match")))
    }
}
