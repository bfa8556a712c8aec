//! HTTP Basic authentication and session-bound CSRF crumbs, as Jenkins checks them.
//!
//! With an API token the caller is exempt from CSRF checks. With a password every POST
//! needs the crumb issued for its HTTP session *and* that session's cookie (SECURITY-626).

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::distributions::Alphanumeric;
use rand::Rng as _;
use sha2::{Digest as _, Sha256};

use super::state::State;

/// The header (and form field) the crumb travels in.
pub(crate) const CRUMB_FIELD: &str = "Jenkins-Crumb";

/// Whether the request carries `Authorization: Basic user:api_token` for the configured user.
pub(crate) fn basic_auth_ok(state: &State, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return false;
    };
    let Some((user, secret)) = text.split_once(':') else {
        return false;
    };
    user == state.settings.user && secret == state.settings.api_token
}

/// The crumb for `session`: a digest of the user name, `;`, the session id and a salt.
pub(crate) fn crumb_for(state: &State, session: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(state.settings.user.as_bytes());
    digest.update(b";");
    digest.update(session.as_bytes());
    digest.update(state.settings.crumb_salt.as_bytes());
    hex::encode(digest.finalize())
}

/// A fresh session id in Jetty's style (`node0…`).
pub(crate) fn new_session_id() -> String {
    let random: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(|b| char::from(b).to_ascii_lowercase())
        .collect();
    format!("node0{random}.node0")
}

/// The value of this instance's session cookie, if the request sent one.
pub(crate) fn session_cookie(state: &State, headers: &HeaderMap) -> Option<String> {
    let wanted = state.settings.cookie_name.as_str();
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value.to_owned())
}

/// The session the request belongs to, if its cookie names one this instance issued.
pub(crate) fn live_session(state: &State, headers: &HeaderMap) -> Option<String> {
    session_cookie(state, headers).filter(|s| state.sessions.contains(s))
}

/// Whether a POST passes the crumb filter.
///
/// `form_crumb` is a `Jenkins-Crumb` query or form parameter, which Jenkins accepts when
/// the header is absent.
pub(crate) fn crumb_ok(state: &State, headers: &HeaderMap, form_crumb: Option<&str>) -> bool {
    if !state.settings.password_mode {
        return true;
    }
    let Some(session) = live_session(state, headers) else {
        return false;
    };
    let sent = headers
        .get(CRUMB_FIELD)
        .and_then(|v| v.to_str().ok())
        .or(form_crumb);
    sent == Some(crumb_for(state, &session).as_str())
}
