//! The GitLab REST client: commit statuses (`POST /projects/:id/statuses/:sha`).

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
        let response = self
            .http
            .post(url)
            .header("PRIVATE-TOKEN", self.token.expose())
            .json(status)
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
        Err(CallError::from_status("GitLab", code, retry_after, &text))
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
