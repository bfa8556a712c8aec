//! What the GitLab and Jenkins clients share: one `reqwest` client each, built once with
//! timeouts and a user agent, bodies read under a size cap, and errors that say whether a
//! retry can help.

use std::time::Duration;

use reqwest::{Response, StatusCode};

/// Connecting must succeed within this, in seconds.
const CONNECT_TIMEOUT_SECS: u64 = 5;
/// A whole request, response included, must finish within this, in seconds. GitLab and
/// Jenkins answer the calls ci-bridge makes in well under a second when healthy.
const REQUEST_TIMEOUT_SECS: u64 = 30;
/// Largest response body read, in bytes; Jenkins' `api/json` of a busy job with a `tree`
/// filter is a few kilobytes, and nothing ci-bridge reads comes near this.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

pub fn client(cookies: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("ci-bridge/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(CONNECT_TIMEOUT_SECS))
        .timeout(Duration::from_secs(REQUEST_TIMEOUT_SECS))
        // Never follow a redirect: a Location is data (Jenkins' queue item), and following
        // one could lead to a host other than the configured one.
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(cookies)
        .build()
        .expect("a client with these settings always builds")
}

/// A failed call to GitLab or Jenkins.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Worth retrying: connection refused, timeout, 5xx, 409, 429.
    #[error("{0}")]
    Transient(String, Option<Duration>),
    /// Retrying will not help: 400, 401, 403, 404 and the like; with the HTTP status.
    #[error("{0}")]
    Permanent(String, Option<u16>),
}

impl CallError {
    /// The HTTP status of a permanent failure, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Permanent(_, status) => *status,
            Self::Transient(..) => None,
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(..))
    }

    /// The server's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Transient(_, after) => *after,
            Self::Permanent(..) => None,
        }
    }

    pub fn from_reqwest(system: &str, error: reqwest::Error) -> Self {
        // reqwest's Display names the URL, which never holds a secret here (tokens travel
        // in headers).
        let what = if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        Self::Transient(format!("{system}: {what}: {}", error.without_url()), None)
    }

    /// Classifies a non-success answer. `body` is cut short for the message.
    pub fn from_status(
        system: &str,
        status: StatusCode,
        retry_after: Option<Duration>,
        body: &str,
    ) -> Self {
        let snippet: String = body.chars().take(200).collect();
        let message = format!("{system} answered {}: {}", status.as_u16(), snippet.trim());
        if status.is_server_error()
            || status == StatusCode::CONFLICT
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
        {
            Self::Transient(message, retry_after)
        } else {
            Self::Permanent(message, Some(status.as_u16()))
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from these servers and ignored).
pub fn retry_after(response: &Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Reads a body up to [`MAX_RESPONSE_BYTES`]; anything longer is an error.
pub async fn read_body(system: &str, mut response: Response) -> Result<Vec<u8>, CallError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| CallError::from_reqwest(system, e))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(CallError::Permanent(
                format!("{system}: response larger than {MAX_RESPONSE_BYTES} bytes"),
                None,
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
