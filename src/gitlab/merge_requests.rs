//! Reading merge requests back from GitLab: the MR itself, who approved it
//! (`GET …/approvals`, `approved_by[].user`, which GitLab CE and EE both expose), and its
//! commits with their authors (`GET …/commits`).

use serde::{de::DeserializeOwned, Deserialize};

use super::GitLabClient;
use crate::outbound::{self, CallError};

/// Pages read at most from a list endpoint (100 items each).
const MAX_PAGES: u32 = 20;

#[derive(Debug, Clone, Deserialize)]
pub struct ApiUser {
    pub id: i64,
    pub username: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiMergeRequest {
    pub iid: i64,
    pub title: Option<String>,
    pub state: Option<String>,
    pub author: Option<ApiUser>,
    pub merged_by: Option<ApiUser>,
    pub source_branch: String,
    pub target_branch: String,
    pub source_project_id: i64,
    pub sha: Option<String>,
    pub merge_commit_sha: Option<String>,
    pub squash_commit_sha: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Approvals {
    #[serde(default)]
    approved_by: Vec<ApprovedBy>,
}

#[derive(Debug, Clone, Deserialize)]
struct ApprovedBy {
    user: ApiUser,
}

/// One commit of a merge request, by its author and committer.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct ApiCommit {
    pub id: String,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub committer_name: Option<String>,
    pub committer_email: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiProject {
    pub id: i64,
    pub default_branch: Option<String>,
}

impl GitLabClient {
    /// `GET /projects/:id/merge_requests/:iid`.
    pub async fn merge_request(
        &self,
        project: &str,
        iid: i64,
    ) -> Result<ApiMergeRequest, CallError> {
        let iid = iid.to_string();
        get_json(self, &["projects", project, "merge_requests", &iid], &[]).await
    }

    /// The users who approved the merge request now.
    pub async fn approved_by(&self, project_id: i64, iid: i64) -> Result<Vec<ApiUser>, CallError> {
        let path = super::client::merge_request_path(project_id, iid, &["approvals"]);
        let approvals: Approvals = get_json(self, &path, &[]).await?;
        Ok(approvals.approved_by.into_iter().map(|a| a.user).collect())
    }

    /// Every commit of the merge request.
    pub async fn merge_request_commits(
        &self,
        project_id: i64,
        iid: i64,
    ) -> Result<Vec<ApiCommit>, CallError> {
        let path = super::client::merge_request_path(project_id, iid, &["commits"]);
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let page_text = page.to_string();
            let query = [("per_page", "100"), ("page", page_text.as_str())];
            let commits: Vec<ApiCommit> = get_json(self, &path, &query).await?;
            let last = commits.len() < 100;
            all.extend(commits);
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// `GET /projects/:id` by number or by `path_with_namespace`.
    pub async fn project(&self, project: &str) -> Result<ApiProject, CallError> {
        get_json(self, &["projects", project], &[]).await
    }

    /// `GET /user`: whom the token belongs to (the author of ci-bridge's notes).
    pub async fn current_user(&self) -> Result<ApiUser, CallError> {
        get_json(self, &["user"], &[]).await
    }
}

/// A GET whose JSON answer is read under the response cap.
pub(super) async fn get_json<T: DeserializeOwned, S: AsRef<str>>(
    client: &GitLabClient,
    segments: &[S],
    query: &[(&str, &str)],
) -> Result<T, CallError> {
    let request = client.request(reqwest::Method::GET, segments).query(query);
    read_json(request).await
}

/// Sends a request and reads its JSON answer; errors say whether a retry can help.
pub(super) async fn read_json<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
) -> Result<T, CallError> {
    let response = request
        .send()
        .await
        .map_err(|e| CallError::from_reqwest("GitLab", e))?;
    let code = response.status();
    let retry_after = outbound::retry_after(&response);
    let body = outbound::read_body("GitLab", response).await?;
    if !code.is_success() {
        let text = String::from_utf8_lossy(&body);
        return Err(CallError::from_status("GitLab", code, retry_after, &text));
    }
    serde_json::from_slice(&body)
        .map_err(|e| CallError::Permanent(format!("GitLab answered unexpected JSON: {e}"), None))
}
