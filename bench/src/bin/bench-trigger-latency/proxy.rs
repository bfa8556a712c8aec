//! A timestamping proxy in front of the Jenkins fake: it forwards every request unchanged
//! and notes the instant each `buildWithParameters` POST arrived, keyed by the merge
//! request iid it carries, so trigger latency is measured where Jenkins would see it.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Instant,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{
    body::Incoming, client::conn::http1 as client, server::conn::http1 as server,
    service::service_fn, Request, Response,
};
use hyper_util::rt::TokioIo;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::Notify,
};

/// The form field whose value names the event a trigger came from.
const IID_PARAM: &str = "gitlabMergeRequestIid=";

/// When the trigger of each merge request iid reached Jenkins.
#[derive(Clone, Default)]
pub struct Arrivals {
    seen: Arc<Mutex<HashMap<u64, Instant>>>,
    changed: Arc<Notify>,
}

impl Arrivals {
    pub fn get(&self, iid: u64) -> Option<Instant> {
        self.seen.lock().expect("arrivals lock").get(&iid).copied()
    }

    pub fn count_in(&self, range: std::ops::RangeInclusive<u64>) -> usize {
        let seen = self.seen.lock().expect("arrivals lock");
        seen.keys().filter(|iid| range.contains(iid)).count()
    }

    /// Waits until the trigger of `iid` arrived, or `deadline` passed.
    pub async fn wait_for(&self, iid: u64, deadline: Instant) -> Option<Instant> {
        loop {
            let notified = self.changed.notified();
            if let Some(at) = self.get(iid) {
                return Some(at);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            let _ = tokio::time::timeout(left, notified).await;
        }
    }

    fn record(&self, iid: u64, at: Instant) {
        self.seen
            .lock()
            .expect("arrivals lock")
            .entry(iid)
            .or_insert(at);
        self.changed.notify_waiters();
    }
}

/// Starts the proxy on `127.0.0.1:0` towards `upstream`; returns its address.
pub async fn start(upstream: SocketAddr, arrivals: Arrivals) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let arrivals = arrivals.clone();
            tokio::spawn(async move {
                if let Err(error) = relay(stream, upstream, arrivals).await {
                    eprintln!("proxy: {error}");
                }
            });
        }
    });
    Ok(addr)
}

/// Serves one inbound connection over one connection of its own to the fake.
async fn relay(stream: TcpStream, upstream: SocketAddr, arrivals: Arrivals) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let outbound = TcpStream::connect(upstream).await?;
    outbound.set_nodelay(true)?;
    let (sender, connection) = client::handshake(TokioIo::new(outbound)).await?;
    tokio::spawn(connection);
    let sender = Arc::new(tokio::sync::Mutex::new(sender));
    let service = service_fn(move |request: Request<Incoming>| {
        let (sender, arrivals) = (sender.clone(), arrivals.clone());
        async move {
            let arrived = Instant::now();
            let answer = forward(&sender, request, arrived, &arrivals).await;
            Ok::<_, Infallible>(answer.unwrap_or_else(|error| {
                eprintln!("proxy: {error}");
                let mut response = Response::new(Full::new(Bytes::new()));
                *response.status_mut() = hyper::StatusCode::BAD_GATEWAY;
                response
            }))
        }
    });
    server::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await?;
    Ok(())
}

async fn forward(
    sender: &tokio::sync::Mutex<client::SendRequest<Full<Bytes>>>,
    request: Request<Incoming>,
    arrived: Instant,
    arrivals: &Arrivals,
) -> anyhow::Result<Response<Full<Bytes>>> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let is_trigger =
        parts.method == hyper::Method::POST && parts.uri.path().ends_with("/buildWithParameters");
    let iid = is_trigger.then(|| iid_of(&body)).flatten();

    let mut sender = sender.lock().await;
    sender.ready().await?;
    let response = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    if let (Some(iid), true) = (iid, parts.status.as_u16() == 201) {
        arrivals.record(iid, arrived);
    }
    Ok(Response::from_parts(parts, Full::new(body)))
}

fn iid_of(form: &[u8]) -> Option<u64> {
    std::str::from_utf8(form)
        .ok()?
        .split('&')
        .find_map(|pair| pair.strip_prefix(IID_PARAM))?
        .parse()
        .ok()
}
