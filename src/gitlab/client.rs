//! The GitLab REST client: commit statuses (`POST /projects/:id/statuses/:sha`).
//!
//! Every status ci-bridge posts goes through [`GitLabClient::post_status`], which makes it
//! fit what GitLab accepts: a link that is not an absolute http(s) URL of at most 255
//! characters is left out (GitLab would refuse the whole status with a 400), and the
//! description is cut to 255 characters.

use std::borrow::Cow;

use serde::Serialize;
use url::Url;

use crate::{
    config::{GitLabConfig, Secret},
    outbound::{self, CallError},
};

/// What a status post did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    Created,
    /// GitLab's 400 "Cannot transition status via ...": it is already in (or past) that
    /// state, which is what we wanted.
    AlreadyThere,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusPost<'a> {
    pub state: &'a str,
    #[serde(rename = "ref")]
    pub git_ref: &'a str,
    pub name: &'a str,
    pub target_url: &'a str,
    pub description: &'a str,
}

/// GitLab's longest `target_url` and `description` of a commit status, in characters.
pub const MAX_STATUS_TEXT_CHARS: usize = 255;

/// A status as it is sent: without a link GitLab would refuse, the description within
/// GitLab's limit.
#[derive(Debug, Serialize)]
struct StatusBody<'a> {
    state: &'a str,
    #[serde(rename = "ref")]
    git_ref: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_url: Option<&'a str>,
    description: Cow<'a, str>,
}

impl<'a> StatusBody<'a> {
    fn of(status: &StatusPost<'a>) -> Self {
        let url = status.target_url;
        Self {
            state: status.state,
            git_ref: status.git_ref,
            name: status.name,
            target_url: (!url.is_empty() && link_problem(url).is_none()).then_some(url),
            description: truncate_chars(status.description, MAX_STATUS_TEXT_CHARS),
        }
    }
}

/// Why GitLab would refuse `url` as a status link, if it would. An empty one is no link.
pub fn link_problem(url: &str) -> Option<&'static str> {
    if url.is_empty() {
        return None;
    }
    if url.chars().count() > MAX_STATUS_TEXT_CHARS {
        return Some("longer than 255 characters");
    }
    match Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => None,
        _ => Some("not an absolute http(s) URL"),
    }
}

/// `text` cut to at most `max_chars` characters, on a character boundary.
pub fn truncate_chars(text: &str, max_chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => Cow::Owned(text[..end].to_owned()),
        None => Cow::Borrowed(text),
    }
}

/// What to check when GitLab refuses a status with `code`, from its answer `body`.
fn refusal_hint(code: u16, body: &str) -> Option<String> {
    Some(match code {
        400 => match refused_fields(body) {
            fields if fields.is_empty() => "check the fields of the request".to_owned(),
            fields => format!("check the request fields: {}", fields.join(", ")),
        },
        401 => "check the GitLab token: GitLab does not accept it (expired or revoked?)".into(),
        403 => "check the GitLab token's role: it may not set statuses on this project or \
                ref (a protected branch needs Maintainer)"
            .into(),
        404 => "check the project id and the sha (GitLab knows no such project or commit), \
                or whether the token can see the project"
            .into(),
        _ => return None,
    })
}

/// The fields a 400 names: the keys of `{"message": {field: [..]}}`, or the parameter that
/// starts each clause of `{"error": "state is missing, ..."}`, or `{"message": "..."}`.
fn refused_fields(body: &str) -> Vec<String> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        return Vec::new();
    };
    if let Some(fields) = value["message"].as_object() {
        return fields.keys().cloned().collect();
    }
    let text = value["error"].as_str().or(value["message"].as_str());
    let mut fields: Vec<String> = text
        .unwrap_or_default()
        .split(',')
        .filter_map(|clause| clause.split_whitespace().next())
        .filter(|word| word.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(str::to_owned)
        .collect();
    fields.dedup();
    fields
}

#[derive(Clone)]
pub struct GitLabClient {
    http: reqwest::Client,
    api: Url,
    token: Secret,
}

/// `projects/:id/merge_requests/:iid` followed by `tail`.
pub(super) fn merge_request_path(project_id: i64, iid: i64, tail: &[&str]) -> Vec<String> {
    let head = [
        "projects".to_owned(),
        project_id.to_string(),
        "merge_requests".to_owned(),
        iid.to_string(),
    ];
    head.into_iter()
        .chain(tail.iter().map(|s| (*s).to_owned()))
        .collect()
}

impl GitLabClient {
    pub fn new(config: &GitLabConfig) -> Self {
        let mut api = config.url.clone();
        let path = format!("{}/api/v4/", api.path().trim_end_matches('/'));
        api.set_path(&path);
        Self {
            http: outbound::client(false),
            api,
            token: config.token.clone(),
        }
    }

    fn endpoint<S: AsRef<str>>(&self, segments: &[S]) -> Url {
        let mut url = self.api.clone();
        url.path_segments_mut()
            .expect("http URLs have path segments")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// A call to `segments` under the API, with the token; for the sibling modules that
    /// read merge requests and write notes.
    pub(super) fn request<S: AsRef<str>>(
        &self,
        method: reqwest::Method,
        segments: &[S],
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.endpoint(segments))
            .header("PRIVATE-TOKEN", self.token.expose())
    }

    pub async fn post_status(
        &self,
        project_id: i64,
        sha: &str,
        status: &StatusPost<'_>,
    ) -> Result<Posted, CallError> {
        let url = self.endpoint(&["projects", &project_id.to_string(), "statuses", sha]);
        if let Some(problem) = link_problem(status.target_url) {
            tracing::warn!(
                project_id,
                sha,
                name = status.name,
                problem,
                url_chars = status.target_url.chars().count(),
                "commit status posted without its link, which GitLab would refuse"
            );
        }
        let response = self
            .http
            .post(url)
            .header("PRIVATE-TOKEN", self.token.expose())
            .json(&StatusBody::of(status))
            .send()
            .await
            .map_err(|e| CallError::from_reqwest("GitLab", e))?;
        let code = response.status();
        if code.is_success() {
            return Ok(Posted::Created);
        }
        let retry_after = outbound::retry_after(&response);
        let body = outbound::read_body("GitLab", response)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        if code == reqwest::StatusCode::BAD_REQUEST && text.contains("Cannot transition status via")
        {
            return Ok(Posted::AlreadyThere);
        }
        Err(
            match CallError::from_status("GitLab", code, retry_after, &text) {
                CallError::Permanent(message, status) => {
                    let hint = refusal_hint(code.as_u16(), &text);
                    let message = match hint {
                        Some(hint) => format!("{message}; {hint}"),
                        None => message,
                    };
                    CallError::Permanent(message, status)
                }
                transient => transient,
            },
        )
    }
}

#[derive(serde::Deserialize)]
struct StatusEntity {
    status: String,
    name: String,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
}

impl GitLabClient {
    /// The state of the newest status named `name` on `sha` and `git_ref`
    /// (`GET /projects/:id/repository/commits/:sha/statuses`), if any.
    pub async fn current_status(
        &self,
        project_id: i64,
        sha: &str,
        name: &str,
        git_ref: &str,
    ) -> Result<Option<String>, CallError> {
        let id = project_id.to_string();
        let segments = ["projects", &id, "repository", "commits", sha, "statuses"];
        let query = [("name", name), ("ref", git_ref), ("per_page", "20")];
        let statuses: Vec<StatusEntity> =
            super::merge_requests::get_json(self, &segments, &query).await?;
        // GitLab lists the newest first.
        Ok(statuses
            .into_iter()
            .find(|s| s.name == name && s.git_ref.as_deref().is_none_or(|r| r == git_ref))
            .map(|s| s.status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_gitlab_would_refuse_is_left_out_and_the_description_cut() {
        let long_url = format!("https://sonar.example.com/{}", "a".repeat(300));
        let description = "é".repeat(300);
        for (url, sent) in [
            ("https://sonar.example.com/dashboard?id=x", true),
            ("", false),
            ("ftp://sonar.example.com/x", false),
            ("javascript:alert(1)", false),
            ("/dashboard?id=x", false),
            (long_url.as_str(), false),
        ] {
            let post = StatusPost {
                state: "success",
                git_ref: "main",
                name: "sonarqube",
                target_url: url,
                description: &description,
            };
            let body = serde_json::to_value(StatusBody::of(&post)).unwrap();
            assert_eq!(body.get("target_url").is_some(), sent, "{url}");
            let sent_description = body["description"].as_str().unwrap();
            assert_eq!(sent_description.chars().count(), MAX_STATUS_TEXT_CHARS);
        }
    }

    #[test]
    fn the_hint_fits_the_code_and_names_the_refused_fields() {
        let invalid = r#"{"message":{"target_url":["is blocked"],"description":["too long"]}}"#;
        assert_eq!(
            refusal_hint(400, invalid).unwrap(),
            "check the request fields: description, target_url"
        );
        let param = r#"{"error":"state is missing, state does not have a valid value"}"#;
        assert_eq!(
            refusal_hint(400, param).unwrap(),
            "check the request fields: state"
        );
        assert!(refusal_hint(401, "").unwrap().contains("token"));
        assert!(refusal_hint(403, "").unwrap().contains("token's role"));
        assert!(refusal_hint(404, "")
            .unwrap()
            .contains("project id and the sha"));
        assert_eq!(refusal_hint(422, ""), None);
    }
}
