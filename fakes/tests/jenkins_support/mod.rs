//! Test support for the fake Jenkins: a harness pairing it with an HTTP client.

use std::future::Future;
use std::time::Duration;

use ci_bridge_fakes::jenkins::{BuildRecord, FakeJenkins, JenkinsOptions};
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;

pub const USER: &str = "bridge";
pub const TOKEN: &str = "s3cret-token";
pub const PUBLIC: &str = "https://jenkins.example.invalid";

/// Polling gives up after this many rounds of [`POLL_INTERVAL`] (about 5 s).
const POLL_ROUNDS: usize = 500;
const POLL_INTERVAL: Duration = Duration::from_millis(10);

pub fn options() -> JenkinsOptions {
    JenkinsOptions {
        user: USER.to_owned(),
        api_token: TOKEN.to_owned(),
        ..JenkinsOptions::default()
    }
}

/// A fake plus a client that follows no redirect (they point at the public URL) and
/// uses no proxy.
pub struct Harness {
    pub jenkins: FakeJenkins,
    pub client: Client,
}

impl Harness {
    pub async fn start(opts: JenkinsOptions) -> Harness {
        Harness::with_cookies(opts, false).await
    }

    pub async fn with_cookies(opts: JenkinsOptions, cookies: bool) -> Harness {
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .cookie_store(cookies)
            .build()
            .expect("reqwest client");
        let jenkins = FakeJenkins::start(opts).await;
        Harness { jenkins, client }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.jenkins.base_url())
    }

    /// Joins a public URL's path onto the fake's bound address, as a client must.
    pub fn local(&self, public: &str) -> String {
        let prefix = self.jenkins.public_url();
        let path = public
            .strip_prefix(&prefix)
            .expect("URL under the public URL");
        self.url(path)
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.post_with(path, form, None).await
    }

    pub async fn post_with(
        &self,
        path: &str,
        form: &[(&str, &str)],
        crumb: Option<&str>,
    ) -> Response {
        let mut request = self
            .client
            .post(self.url(path))
            .basic_auth(USER, Some(TOKEN));
        if let Some(crumb) = crumb {
            request = request.header("Jenkins-Crumb", crumb);
        }
        request.form(form).send().await.expect("POST")
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.get_url(self.url(path)).await
    }

    pub async fn get_url(&self, url: String) -> (StatusCode, Value) {
        let request = self.client.get(url).basic_auth(USER, Some(TOKEN));
        let response = request.send().await.expect("GET");
        let status = response.status();
        let body = response.text().await.expect("body");
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// `GET <public url>api/json`, against the bound address.
    pub async fn api_of(&self, public: &str) -> (StatusCode, Value) {
        self.get_url(format!("{}api/json", self.local(public)))
            .await
    }

    pub async fn first_build(&self) -> BuildRecord {
        wait_for(|| async { self.jenkins.builds().into_iter().next() }).await
    }
}

pub fn location(response: &Response) -> String {
    let value = response.headers()["location"].to_str().expect("ascii");
    value.to_owned()
}

pub async fn wait_for<T, F, Fut>(mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..POLL_ROUNDS {
        if let Some(value) = probe().await {
            return value;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    panic!("condition not met in time");
}
