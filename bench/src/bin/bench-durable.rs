//! `bench-durable`: the minimal durable receiver, the durability limit ci-bridge is held
//! to. Per request: verify (constant-time token, or HMAC-SHA256 signature over the raw
//! body), parse the JSON, insert it into SQLite by group commit (WAL, fsync on every
//! commit), and answer 202 only once the batch holding it is on disk.
//!
//! Usage: `bench-durable LISTEN DB_PATH SECRET`, where SECRET is an `X-Gitlab-Token`
//! value or a `whsec_` signing key.

use std::{path::PathBuf, time::SystemTime};

use bytes::Bytes;
use ci_bridge_bench::{
    group_commit::{Event, Writer},
    server::{reply, serve, Reply},
    verify::Check,
};
use http_body_util::{BodyExt, Limited};
use hyper::{body::Incoming, Request};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Largest body read, in bytes: GitLab's own webhook body limit.
const MAX_BODY: usize = 25 * 1024 * 1024;

/// The fields a receiver must read to route and check a merge-request event.
#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(borrow)]
    object_kind: &'a str,
    project: Project<'a>,
    object_attributes: Attributes<'a>,
}

#[derive(Deserialize)]
struct Project<'a> {
    #[serde(borrow)]
    path_with_namespace: &'a str,
}

#[derive(Deserialize)]
struct Attributes<'a> {
    iid: u64,
    #[serde(borrow, default)]
    action: Option<&'a str>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench-durable LISTEN DB_PATH TOKEN|whsec_KEY";
    let listen = args.next().ok_or(anyhow::anyhow!(usage))?.parse()?;
    let db = PathBuf::from(args.next().ok_or(anyhow::anyhow!(usage))?);
    let check = Check::parse(&args.next().ok_or(anyhow::anyhow!(usage))?)?;
    let writer = Writer::open(&db)?;
    serve(listen, move |request| {
        let (check, writer) = (check.clone(), writer.clone());
        async move { handle(&check, &writer, request).await }
    })
    .await
}

async fn handle(check: &Check, writer: &Writer, request: Request<Incoming>) -> Reply {
    let (parts, body) = request.into_parts();
    if !check.token_ok(&parts.headers) {
        return reply(401, r#"{"error":"token"}"#);
    }
    let Ok(body) = Limited::new(body, MAX_BODY).collect().await else {
        return reply(400, r#"{"error":"body"}"#);
    };
    let body: Bytes = body.to_bytes();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("the clock is past 1970");
    if !check.signature_ok(&parts.headers, &body, now.as_secs() as i64) {
        return reply(401, r#"{"error":"signature"}"#);
    }
    let project = match serde_json::from_slice::<Payload<'_>>(&body) {
        Ok(p) if p.object_kind == "merge_request" && p.object_attributes.iid > 0 => {
            let _ = p.object_attributes.action;
            p.project.path_with_namespace.to_owned()
        }
        _ => return reply(400, r#"{"error":"payload"}"#),
    };
    let key = parts
        .headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| format!("key:{k}"))
        .unwrap_or_else(|| format!("body:{:x}", Sha256::digest(&body)));
    let event = Event {
        dedup_key: key,
        project,
        received_at: now.as_millis() as i64,
        body,
    };
    match writer.record(event).await {
        Ok(true) => reply(202, r#"{"status":"accepted"}"#),
        Ok(false) => reply(200, r#"{"status":"duplicate"}"#),
        Err(_) => reply(503, r#"{"error":"storage"}"#),
    }
}
