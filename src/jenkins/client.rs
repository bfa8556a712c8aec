//! The Jenkins remote-access client.
//!
//! Authenticates with HTTP Basic (user + API token, which Jenkins exempts from CSRF). When
//! the credential is a password, Jenkins answers a POST with `403 No valid crumb`: the
//! client then fetches a crumb, which Jenkins binds to the HTTP session, keeps the session
//! cookie, and retries once. Every URL is built on the configured base; nothing Jenkins
//! returns is ever used as a host to call.

use std::sync::Mutex;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use url::Url;

use super::{
    job_path::{job_url, queue_id_from_location, root_url},
    search,
};
use crate::{
    config::{JenkinsConfig, Secret},
    outbound::{self, CallError},
};

/// What Jenkins did with a trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Triggered {
    /// 201: a new queue item.
    Queued(i64),
    /// 303: merged into an item already queued.
    Merged(i64),
}

/// A queue item, as far as ci-bridge cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueState {
    Waiting {
        why: Option<String>,
    },
    Started {
        number: i64,
    },
    Cancelled,
    /// 404: Jenkins no longer knows the item (it forgets left items after 5 minutes, and
    /// all of them on restart).
    Gone,
}

/// A build as `/job/.../N/api/json` reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct RunInfo {
    pub number: i64,
    #[serde(default)]
    pub building: bool,
    pub result: Option<String>,
    #[serde(default)]
    pub duration: i64,
    #[serde(rename = "queueId")]
    pub queue_id: Option<i64>,
}

#[derive(Deserialize)]
struct QueueItemJson {
    #[serde(default)]
    cancelled: Option<bool>,
    executable: Option<Executable>,
    why: Option<String>,
}

#[derive(Deserialize)]
struct Executable {
    number: i64,
}

#[derive(Deserialize)]
struct CrumbJson {
    crumb: String,
    #[serde(rename = "crumbRequestField")]
    field: String,
}

pub struct JenkinsClient {
    http: reqwest::Client,
    base: Url,
    user: String,
    token: Secret,
    crumb: Mutex<Option<(String, String)>>,
}

impl JenkinsClient {
    pub fn new(config: &JenkinsConfig) -> Self {
        Self {
            // The cookie store keeps the session a crumb is bound to; it only ever holds
            // cookies of the configured Jenkins, the one host this client calls.
            http: outbound::client(true),
            base: config.url.clone(),
            user: config.user.clone(),
            token: config.api_token.clone(),
            crumb: Mutex::new(None),
        }
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let mut request = self
            .http
            .request(method.clone(), url)
            .basic_auth(&self.user, Some(self.token.expose()));
        if method == Method::POST {
            if let Some((field, crumb)) = self.crumb.lock().expect("crumb lock").clone() {
                request = request.header(field, crumb);
            }
        }
        request
    }

    async fn send(&self, request: RequestBuilder) -> Result<Response, CallError> {
        request
            .send()
            .await
            .map_err(|e| CallError::from_reqwest("Jenkins", e))
    }

    /// Sends a POST; on `403 No valid crumb` fetches a crumb and retries once.
    async fn post(
        &self,
        url: Url,
        form: Option<&[(String, String)]>,
    ) -> Result<Response, CallError> {
        let build = |client: &Self| {
            let request = client.request(Method::POST, url.clone());
            match form {
                Some(form) => request.form(form),
                None => request,
            }
        };
        let response = self.send(build(self)).await?;
        if response.status() != StatusCode::FORBIDDEN {
            return Ok(response);
        }
        let body = outbound::read_body("Jenkins", response).await?;
        let text = String::from_utf8_lossy(&body).into_owned();
        if !text.contains("No valid crumb") {
            return Err(CallError::from_status(
                "Jenkins",
                StatusCode::FORBIDDEN,
                None,
                &text,
            ));
        }
        self.fetch_crumb().await?;
        self.send(build(self)).await
    }

    async fn fetch_crumb(&self) -> Result<(), CallError> {
        let url = root_url(&self.base, &["crumbIssuer", "api", "json"]);
        let response = self.send(self.request(Method::GET, url)).await?;
        let crumb: CrumbJson = self.json("crumb issuer", response).await?;
        *self.crumb.lock().expect("crumb lock") = Some((crumb.field, crumb.crumb));
        Ok(())
    }

    async fn json<T: for<'de> Deserialize<'de>>(
        &self,
        what: &str,
        response: Response,
    ) -> Result<T, CallError> {
        let status = response.status();
        let retry_after = outbound::retry_after(&response);
        let body = outbound::read_body("Jenkins", response).await?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(CallError::from_status(
                "Jenkins",
                status,
                retry_after,
                &text,
            ));
        }
        serde_json::from_slice(&body).map_err(|e| {
            CallError::Transient(format!("Jenkins {what}: unexpected JSON: {e}"), None)
        })
    }

    /// `POST /job/.../buildWithParameters` with `delay=0sec`.
    pub async fn trigger(
        &self,
        job: &str,
        params: &[(String, String)],
    ) -> Result<Triggered, CallError> {
        let mut url = job_url(&self.base, job, &["buildWithParameters"]);
        url.query_pairs_mut().append_pair("delay", "0sec");
        let response = self.post(url, Some(params)).await?;
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let queue_id = location.as_deref().and_then(queue_id_from_location);
        match (status, queue_id) {
            (StatusCode::CREATED, Some(id)) => Ok(Triggered::Queued(id)),
            (StatusCode::SEE_OTHER, Some(id)) => Ok(Triggered::Merged(id)),
            (StatusCode::CREATED | StatusCode::SEE_OTHER, None) => Err(CallError::Permanent(
                format!(
                    "Jenkins answered {} without a queue item Location",
                    status.as_u16()
                ),
                None,
            )),
            (status, _) if status.is_redirection() => Err(CallError::Transient(
                format!(
                    "Jenkins did not queue the build (answered {} to the job page)",
                    status.as_u16()
                ),
                None,
            )),
            (status, _) => {
                let retry_after = outbound::retry_after(&response);
                let body = outbound::read_body("Jenkins", response)
                    .await
                    .unwrap_or_default();
                let text = String::from_utf8_lossy(&body);
                if status == StatusCode::CONFLICT {
                    // Jenkins' 409 is "<job> is not buildable" (disabled): waiting won't help.
                    let snippet: String = text.chars().take(200).collect();
                    let message = format!("Jenkins answered 409: {}", snippet.trim());
                    return Err(CallError::Permanent(message, Some(409)));
                }
                Err(CallError::from_status(
                    "Jenkins",
                    status,
                    retry_after,
                    &text,
                ))
            }
        }
    }

    /// `GET /queue/item/N/api/json`.
    pub async fn queue_item(&self, queue_id: i64) -> Result<QueueState, CallError> {
        let id = queue_id.to_string();
        let url = root_url(&self.base, &["queue", "item", &id, "api", "json"]);
        let response = self.send(self.request(Method::GET, url)).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(QueueState::Gone);
        }
        let item: QueueItemJson = self.json("queue item", response).await?;
        Ok(item.into())
    }

    /// `GET /job/.../N/api/json`; `None` when Jenkins does not know the build.
    pub async fn run(&self, job: &str, number: i64) -> Result<Option<RunInfo>, CallError> {
        let number = number.to_string();
        let mut url = job_url(&self.base, job, &[&number, "api", "json"]);
        url.query_pairs_mut()
            .append_pair("tree", "number,building,result,duration,queueId");
        let response = self.send(self.request(Method::GET, url)).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.json("build", response).await.map(Some)
    }

    /// `POST /queue/cancelItem?id=N`. Jenkins answers 204, or 404/422 when the item is no
    /// longer in the queue (it started or was forgotten): both mean there is nothing left
    /// to cancel, which the caller learns from `Ok(false)`.
    pub async fn cancel_queue_item(&self, queue_id: i64) -> Result<bool, CallError> {
        let mut url = root_url(&self.base, &["queue", "cancelItem"]);
        url.query_pairs_mut()
            .append_pair("id", &queue_id.to_string());
        let response = self.post(url, None).await?;
        let status = response.status();
        if status.is_success() || status.is_redirection() {
            return Ok(true);
        }
        if status == StatusCode::NOT_FOUND || status == StatusCode::UNPROCESSABLE_ENTITY {
            return Ok(false);
        }
        let body = outbound::read_body("Jenkins", response)
            .await
            .unwrap_or_default();
        Err(CallError::from_status(
            "Jenkins",
            status,
            None,
            &String::from_utf8_lossy(&body),
        ))
    }

    /// `POST /job/.../N/stop`: asks Jenkins to abort a running build (it does so
    /// asynchronously).
    pub async fn stop_build(&self, job: &str, number: i64) -> Result<(), CallError> {
        let url = job_url(&self.base, job, &[&number.to_string(), "stop"]);
        let response = self.post(url, None).await?;
        let status = response.status();
        if status.is_success() || status.is_redirection() || status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        let body = outbound::read_body("Jenkins", response)
            .await
            .unwrap_or_default();
        Err(CallError::from_status(
            "Jenkins",
            status,
            None,
            &String::from_utf8_lossy(&body),
        ))
    }

    /// `POST /job/<parent>/build`: on a multibranch project this starts branch indexing, so
    /// that a job for a new branch appears. Best effort.
    pub async fn scan_multibranch(&self, parent: &str) -> Result<(), CallError> {
        let mut url = job_url(&self.base, parent, &["build"]);
        url.query_pairs_mut().append_pair("delay", "0");
        self.post(url, None).await.map(|_| ())
    }

    /// Looks for the build carrying `CI_BRIDGE_BUILD_ID = build_id`: first in the queue,
    /// then among the job's recent builds. Used when a trigger's outcome is unknown (a crash
    /// between sending it and recording the answer) or a queue item was forgotten.
    pub async fn find(
        &self,
        job: &str,
        build_id: &str,
        since_ms: i64,
    ) -> Result<Option<Found>, CallError> {
        let mut url = root_url(&self.base, &["queue", "api", "json"]);
        url.query_pairs_mut().append_pair(
            "tree",
            "items[id,task[name,url],actions[parameters[name,value]]]",
        );
        let response = self.send(self.request(Method::GET, url)).await?;
        let queue: search::Queue = self.json("queue", response).await?;
        if let Some(item) = queue
            .items
            .iter()
            .find(|i| search::carries(&i.actions, build_id))
        {
            return Ok(Some(Found::Queued(item.id)));
        }
        // Newest first, a page at a time, back to the builds older than the planned
        // build (`since_ms`): a busy job may start many builds while a lease runs out.
        let mut previous_first = None;
        for page in 0..FIND_MAX_PAGES {
            let (from, to) = (page * FIND_PAGE, (page + 1) * FIND_PAGE);
            let mut url = job_url(&self.base, job, &["api", "json"]);
            let tree =
                format!("builds[number,timestamp,actions[parameters[name,value]]]{{{from},{to}}}");
            url.query_pairs_mut().append_pair("tree", &tree);
            let response = self.send(self.request(Method::GET, url)).await?;
            if response.status() == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            let listing: search::Job = self.json("job", response).await?;
            let builds = listing.builds;
            if let Some(found) = builds
                .iter()
                .find(|b| search::carries(&b.actions, build_id))
            {
                return Ok(Some(Found::Run(found.number)));
            }
            let first = builds.first().map(|b| b.number);
            let older_than_plan = builds
                .iter()
                .any(|b| b.timestamp.is_some_and(|t| t < since_ms));
            // A server that ignores the range returns the same page again.
            if builds.len() < FIND_PAGE || older_than_plan || first == previous_first {
                break;
            }
            previous_first = first;
        }
        Ok(None)
    }
}

impl From<QueueItemJson> for QueueState {
    fn from(item: QueueItemJson) -> Self {
        match (item.executable, item.cancelled) {
            (Some(executable), _) => QueueState::Started {
                number: executable.number,
            },
            (None, Some(true)) => QueueState::Cancelled,
            (None, _) => QueueState::Waiting { why: item.why },
        }
    }
}

/// Reads a `/queue/item/N/api/json` body as the tracker does.
pub fn parse_queue_item(body: &[u8]) -> serde_json::Result<QueueState> {
    serde_json::from_slice::<QueueItemJson>(body).map(Into::into)
}

/// Reads a `/job/.../N/api/json` body as the tracker does.
pub fn parse_run(body: &[u8]) -> serde_json::Result<RunInfo> {
    serde_json::from_slice(body)
}

/// Builds per page when searching a job's history for a `CI_BRIDGE_BUILD_ID`.
const FIND_PAGE: usize = 50;
/// Pages searched at most (1,000 builds): far more than any job starts between a trigger
/// and the search that follows a crash.
const FIND_MAX_PAGES: usize = 20;

/// Where [`JenkinsClient::find`] found a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Queued(i64),
    Run(i64),
}
