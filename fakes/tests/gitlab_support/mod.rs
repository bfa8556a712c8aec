//! Test support for the fake GitLab: a harness with one project and one merge request.

use ci_bridge_fakes::gitlab::{FakeGitLab, GitLabOptions, User};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;

pub const TOKEN: &str = "glpat-fake-token";
pub const PROJECT: u64 = 42;
pub const MR: u64 = 5;
pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

pub fn bot() -> User {
    User::new(999, "ci-bridge", "CI Bridge")
}

pub fn human() -> User {
    User::new(7, "alice", "Alice")
}

/// The fake with project 42 `group/app` and MR !5 `feature/x` → `main` at [`SHA`].
pub struct Harness {
    pub gitlab: FakeGitLab,
    pub client: Client,
}

impl Harness {
    pub async fn start() -> Harness {
        let gitlab = FakeGitLab::start(GitLabOptions {
            token: TOKEN.to_owned(),
            bot_user: bot(),
        })
        .await;
        gitlab.add_project(PROJECT, "group/app");
        gitlab.add_merge_request(PROJECT, MR, human(), "feature/x", "main", SHA);
        let client = Client::builder()
            .no_proxy()
            .build()
            .expect("reqwest client");
        Harness { gitlab, client }
    }

    /// The absolute URL of an API path such as `/projects/42`.
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v4{path}", self.gitlab.base_url())
    }

    /// The notes URL of MR !5, with `suffix` appended.
    pub fn notes(&self, suffix: &str) -> String {
        self.api(&format!(
            "/projects/{PROJECT}/merge_requests/{MR}/notes{suffix}"
        ))
    }

    /// A request carrying the right `PRIVATE-TOKEN`.
    pub fn authed(&self, method: Method, url: &str) -> RequestBuilder {
        self.client
            .request(method, url)
            .header("PRIVATE-TOKEN", TOKEN)
    }

    /// An authenticated GET with query parameters.
    pub async fn get(&self, url: &str, query: &[(&str, &str)]) -> Response {
        let request = self.authed(Method::GET, url).query(query);
        request.send().await.expect("GET")
    }

    /// An authenticated GET, decoded as JSON.
    pub async fn get_json(&self, url: &str, query: &[(&str, &str)]) -> Value {
        self.get(url, query).await.json().await.expect("JSON body")
    }

    /// Posts a JSON body to the statuses endpoint of [`SHA`].
    pub async fn post_status(&self, body: Value) -> (StatusCode, Value) {
        let url = self.api(&format!("/projects/{PROJECT}/statuses/{SHA}"));
        let response = self.authed(Method::POST, &url).json(&body).send().await;
        decode(response.expect("POST")).await
    }

    /// Sends a note body with `method` to `url`.
    pub async fn note(&self, method: Method, url: &str, body: Value) -> (StatusCode, Value) {
        let response = self.authed(method, url).json(&body).send().await;
        decode(response.expect("note request")).await
    }
}

/// The status and JSON body of a response.
pub async fn decode(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}
