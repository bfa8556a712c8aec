//! `ci-bridge demo`: the whole flow on one machine, without a GitLab or a Jenkins.
//!
//! Starts the same fakes of GitLab and Jenkins the tests use (on 127.0.0.1), runs the real
//! service against them on an SQLite file, sends it a push and a merge-request webhook as
//! GitLab would, and prints every commit status as GitLab receives it. Then it keeps
//! serving, so the endpoints can be tried by hand, until Ctrl-C.

use std::{collections::HashSet, time::Duration};

use ci_bridge_fakes::{
    gitlab::{FakeGitLab, GitLabOptions},
    jenkins::{FakeJenkins, JenkinsOptions},
};
use tokio::net::TcpListener;

use crate::{config::Config, Application};

const PROJECT: &str = "demo/app";
const PROJECT_ID: u64 = 1;
const JOB: &str = "demo/app-ci";
const TOKEN: &str = "demo-webhook-token";

pub async fn run(listen: &str, database: &str) -> anyhow::Result<()> {
    let gitlab = FakeGitLab::start(GitLabOptions::default()).await;
    gitlab.add_project(PROJECT_ID, PROJECT);
    let jenkins = FakeJenkins::start(JenkinsOptions {
        quiet_period: Duration::from_millis(500),
        build_duration: Duration::from_secs(2),
        ..JenkinsOptions::default()
    })
    .await;
    let params = [
        "CI_BRIDGE_BUILD_ID",
        "gitlabActionType",
        "gitlabSourceBranch",
        "gitlabAfter",
    ];
    jenkins.add_job(JOB, &params);

    let config = Config::parse(&format!(
        r#"
[server]
listen = "{listen}"
[database]
url = "{database}"
[gitlab]
url = "{gitlab}"
token = "{gitlab_token}"
webhook_token = "{TOKEN}"
[jenkins]
url = "{jenkins}"
user = "ci-bridge"
api_token = "{jenkins_token}"
callback_token = "demo-callback-token"
poll_interval = "200ms"
[[projects]]
gitlab = "{PROJECT}"
job = "{JOB}"
"#,
        gitlab = gitlab.base_url(),
        gitlab_token = GitLabOptions::default().token,
        jenkins = jenkins.base_url(),
        jenkins_token = JenkinsOptions::default().api_token,
    ))?;
    let listener = TcpListener::bind(config.server.listen).await?;
    let app = Application::build(config, listener).await?;
    let url = format!("http://{}", app.local_addr()?);
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run());

    println!("ci-bridge demo: service at {url}");
    println!("  fake GitLab  at {}", gitlab.base_url());
    println!("  fake Jenkins at {}\n", jenkins.base_url());

    let client = reqwest::Client::new();
    let head = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432";
    let push = serde_json::json!({
        "object_kind": "push", "ref": "refs/heads/main",
        "before": "0000000000000000000000000000000000000000", "after": head,
        "user_name": "Demo User", "user_username": "demo",
        "project": { "id": PROJECT_ID, "path_with_namespace": PROJECT, "name": "app", "namespace": "demo" },
        "commits": [{ "id": head, "message": "Demo commit" }]
    });
    send(&client, &url, "Push Hook", &push).await?;
    watch(&gitlab, head).await;

    println!("\nThe service keeps running; try for example:");
    println!("  curl {url}/readyz");
    println!("  curl {url}/metrics");
    println!("  curl -X POST {url}/hooks/gitlab -H 'Content-Type: application/json' \\");
    println!("       -H 'X-Gitlab-Event: Push Hook' -H 'X-Gitlab-Token: wrong' -d '{{}}'");
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    shutdown.cancel();
    server.await??;
    Ok(())
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    event: &str,
    body: &serde_json::Value,
) -> anyhow::Result<()> {
    let response = client
        .post(format!("{url}/hooks/gitlab"))
        .header("X-Gitlab-Event", event)
        .header("X-Gitlab-Token", TOKEN)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(body)
        .send()
        .await?;
    let status = response.status();
    println!(
        "GitLab → ci-bridge  {event}: {status} {}",
        response.text().await?
    );
    Ok(())
}

/// Prints each status GitLab receives for `sha` until one is final (or 30 s pass).
async fn watch(gitlab: &FakeGitLab, sha: &str) {
    let mut seen = HashSet::new();
    for _ in 0..300 {
        for post in gitlab.status_posts().into_iter().filter(|p| p.sha == sha) {
            let line = format!(
                "ci-bridge → GitLab  status {:<8} {:<40} {}",
                post.state.clone().unwrap_or_default(),
                post.description.clone().unwrap_or_default(),
                post.target_url.clone().unwrap_or_default()
            );
            if seen.insert(line.clone()) {
                println!("{line}");
            }
        }
        let finished = gitlab
            .statuses(PROJECT_ID, sha)
            .iter()
            .any(|s| matches!(s.state.as_str(), "success" | "failed" | "canceled"));
        if finished {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
