//! A reverse proxy in front of a fake, so a test can make GitLab or Jenkins slow at an
//! exact point: requests matching a [`Rule`] are held before or after they reach the fake
//! until the test releases them. It also applies Jenkins' `tree=builds[..]{M,N}` range,
//! which the fake ignores, so a search sees only the builds real Jenkins would return.

use std::{
    net::Ipv4Addr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    Router,
};
use tokio::sync::watch;

/// Where a held request waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// The fake has handled it; its answer is kept from the caller.
    AfterForward,
    /// Reaches the fake after this delay, whether or not the hold is released.
    Delay(Duration),
}

/// Which requests to hold, and where.
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: Method,
    /// The request path contains this.
    pub path_contains: &'static str,
    /// The request body contains this (any body when `None`).
    pub body_contains: Option<String>,
    pub hold: Hold,
}

impl Rule {
    /// Jenkins triggers (`buildWithParameters`).
    pub fn jenkins_triggers(hold: Hold) -> Self {
        Self {
            method: Method::POST,
            path_contains: "/buildWithParameters",
            body_contains: None,
            hold,
        }
    }

    /// GitLab commit status posts, only those carrying `state` when given.
    pub fn gitlab_status_posts(state: Option<&'static str>, hold: Hold) -> Self {
        Self {
            method: Method::POST,
            path_contains: "/statuses/",
            body_contains: state.map(|state| format!("\"state\":\"{state}\"")),
            hold,
        }
    }

    fn matches(&self, method: &Method, uri: &Uri, body: &[u8]) -> bool {
        let in_body = match &self.body_contains {
            Some(needle) => String::from_utf8_lossy(body).contains(needle.as_str()),
            None => true,
        };
        *method == self.method && uri.path().contains(self.path_contains) && in_body
    }
}

struct Inner {
    upstream: String,
    client: reqwest::Client,
    rule: Mutex<Option<Rule>>,
    /// True while matching requests are held.
    holding: watch::Sender<bool>,
    /// Requests waiting in a hold right now.
    held: AtomicUsize,
    /// Requests received and not yet answered.
    in_flight: AtomicUsize,
}

/// A running proxy; cloning shares it. It stops with the test's runtime.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
    url: String,
}

impl Proxy {
    /// Starts a proxy to `upstream` (a base URL without a trailing slash) on 127.0.0.1.
    pub async fn start(upstream: &str) -> Self {
        let (holding, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("proxy client"),
            rule: Mutex::new(None),
            holding,
            held: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
        });
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let router = Router::new().fallback(forward).with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { inner, url }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Holds requests matching `rule` from now on, until [`Proxy::release`].
    pub fn hold(&self, rule: Rule) {
        *self.inner.rule.lock().expect("proxy rule") = Some(rule);
        self.inner.holding.send_replace(true);
    }

    /// Lets every held request go, and holds nothing more.
    pub fn release(&self) {
        *self.inner.rule.lock().expect("proxy rule") = None;
        self.inner.holding.send_replace(false);
    }

    /// Requests waiting in the hold now.
    pub fn held(&self) -> usize {
        self.inner.held.load(Ordering::SeqCst)
    }

    /// Requests received and not yet answered, held ones included.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }
}

async fn forward(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    inner.in_flight.fetch_add(1, Ordering::SeqCst);
    let _answered = Answered(&inner.in_flight);
    let rule = inner.rule.lock().expect("proxy rule").clone();
    let hold = rule
        .filter(|rule| rule.matches(&method, &uri, &body))
        .map(|rule| rule.hold);
    if let Some(Hold::Delay(delay)) = hold {
        inner.held.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(delay).await;
        inner.held.fetch_sub(1, Ordering::SeqCst);
    }
    let answer = send_upstream(&inner, &method, &uri, &headers, body).await;
    if hold == Some(Hold::AfterForward) {
        wait_released(&inner).await;
    }
    answer
}

/// Counts a request as answered when the handler ends, even when hyper drops it early.
struct Answered<'a>(&'a AtomicUsize);

impl Drop for Answered<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn wait_released(inner: &Inner) {
    inner.held.fetch_add(1, Ordering::SeqCst);
    let mut holding = inner.holding.subscribe();
    let _ = holding.wait_for(|holding| !holding).await;
    inner.held.fetch_sub(1, Ordering::SeqCst);
}

async fn send_upstream(
    inner: &Inner,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = inner
        .client
        .request(method.clone(), format!("{}{path}", inner.upstream));
    for (name, value) in headers {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            request = request.header(name, value);
        }
    }
    let upstream = match request.body(body).send().await {
        Ok(upstream) => upstream,
        Err(error) => return (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    };
    let status = upstream.status();
    let mut reply_headers = upstream.headers().clone();
    let mut bytes = upstream.bytes().await.unwrap_or_default();
    if let Some(range) = builds_range(uri) {
        bytes = apply_builds_range(bytes, range);
    }
    for name in ["content-length", "transfer-encoding", "connection"] {
        reply_headers.remove(name);
    }
    (status, reply_headers, bytes).into_response()
}

/// The `{M,N}` range of a `tree=builds[...]{M,N}` query, as real Jenkins applies it.
fn builds_range(uri: &Uri) -> Option<(usize, usize)> {
    let query = uri.query()?;
    let tree = url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "tree")?
        .1
        .into_owned();
    let rest = tree.strip_prefix("builds[")?;
    let range = rest.rsplit_once(']')?.1;
    let (from, to) = range
        .strip_prefix('{')?
        .strip_suffix('}')?
        .split_once(',')?;
    Some((from.trim().parse().ok()?, to.trim().parse().ok()?))
}

fn apply_builds_range(bytes: Bytes, (from, to): (usize, usize)) -> Bytes {
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return bytes;
    };
    if let Some(builds) = doc.get_mut("builds").and_then(|b| b.as_array_mut()) {
        let kept = builds.iter().skip(from).take(to.saturating_sub(from));
        *builds = kept.cloned().collect();
    }
    Bytes::from(serde_json::to_vec(&doc).unwrap_or_default())
}
