//! Webhook deliveries as GitLab makes them: push events with distinct commits, each with
//! its own `Idempotency-Key`, sent with bounded concurrency; the answers are kept.

use std::{sync::Arc, time::Duration};

use serde_json::json;

use crate::replica::{PROJECT, PROJECT_ID, WEBHOOK_TOKEN};

/// One webhook delivery: the same key and body on every redelivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub key: String,
    pub sha: String,
    pub body: String,
}

/// What ci-bridge answered one delivery.
#[derive(Debug, Clone)]
pub struct Answer {
    pub delivery: Delivery,
    /// HTTP status; 0 when no answer came (connection refused or reset).
    pub status: u16,
    pub event_id: Option<String>,
    pub latency: Duration,
}

impl Answer {
    pub fn is_2xx(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// `count` pushes of distinct commits, each to its own branch so that none supersedes
/// another (a newer commit on a branch cancels the older one's build); `run` keeps keys,
/// branches and shas apart between runs on one fake.
pub fn pushes(run: &str, count: usize) -> Vec<Delivery> {
    (0..count).map(|index| push(run, index)).collect()
}

fn push(run: &str, index: usize) -> Delivery {
    let seed = run
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let sha = format!("{:016x}{:024x}", seed, index + 1);
    let before = format!("{:040x}", index);
    let body = json!({
        "object_kind": "push",
        "event_name": "push",
        "before": before,
        "after": sha,
        "ref": format!("refs/heads/feature/{run}-{index}"),
        "ref_protected": false,
        "checkout_sha": sha,
        "user_id": 7,
        "user_name": "Ada Lovelace",
        "user_username": "ada",
        "user_email": "ada@example.com",
        "project_id": PROJECT_ID,
        "project": {
            "id": PROJECT_ID,
            "name": "collector",
            "namespace": "analytics",
            "path_with_namespace": PROJECT,
            "web_url": format!("https://gitlab.example.com/{PROJECT}"),
            "git_http_url": format!("https://gitlab.example.com/{PROJECT}.git"),
            "git_ssh_url": format!("git@gitlab.example.com:{PROJECT}.git"),
            "default_branch": "main",
            "visibility_level": 0
        },
        "commits": [{
            "id": sha,
            "message": format!("Change {index}\n"),
            "title": format!("Change {index}"),
            "timestamp": "2026-11-30T10:00:00+00:00",
            "author": { "name": "Ada Lovelace", "email": "ada@example.com" },
            "added": [], "modified": ["src/lib.rs"], "removed": []
        }],
        "total_commits_count": 1,
        "repository": { "name": "collector", "homepage": format!("https://gitlab.example.com/{PROJECT}") }
    })
    .to_string();
    Delivery {
        key: format!("{run}-{index:04}-{}", uuid::Uuid::new_v4().simple()),
        sha,
        body,
    }
}

/// Delivers once to `base` (a replica URL).
pub async fn deliver(http: &reqwest::Client, base: &str, delivery: &Delivery) -> Answer {
    let started = std::time::Instant::now();
    let sent = http
        .post(format!("{base}/hooks/gitlab"))
        .header("Content-Type", "application/json")
        .header("X-Gitlab-Event", "Push Hook")
        .header("X-Gitlab-Token", WEBHOOK_TOKEN)
        .header("Idempotency-Key", delivery.key.as_str())
        .header("User-Agent", "GitLab/17.4.0")
        .timeout(Duration::from_secs(10))
        .body(delivery.body.clone())
        .send()
        .await;
    let (status, body) = match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            (status, body)
        }
        Err(_) => (0, serde_json::Value::Null),
    };
    Answer {
        delivery: delivery.clone(),
        status,
        event_id: body["event_id"].as_str().map(str::to_owned),
        latency: started.elapsed(),
    }
}

/// Delivers every one of `deliveries` to `base`, `parallel` at a time.
pub async fn deliver_all(base: &str, deliveries: &[Delivery], parallel: usize) -> Vec<Answer> {
    let http = reqwest::Client::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(parallel));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, delivery) in deliveries.iter().cloned().enumerate() {
        let (http, gate, base) = (http.clone(), gate.clone(), base.to_owned());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("semaphore");
            (index, deliver(&http, &base, &delivery).await)
        });
    }
    let mut answers = Vec::with_capacity(deliveries.len());
    while let Some(done) = tasks.join_next().await {
        answers.push(done.expect("delivery task"));
    }
    answers.sort_by_key(|(index, _)| *index);
    answers.into_iter().map(|(_, answer)| answer).collect()
}
