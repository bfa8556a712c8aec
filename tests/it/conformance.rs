//! Real captured payloads through the real service.
//!
//! `CI_BRIDGE_FIXTURES` names the folder of captures (`.ci/run` sets it). When it is set,
//! every capture must be there and must have its expected effect; a capture this test does
//! not know, or a known one that is missing, fails the test. Unset, the test says so and
//! checks nothing.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{eventually, Options, TestApp, WAIT};

/// What a capture must lead to.
enum Expect {
    /// One build, statuses pending → running → success on (project id, sha, ref).
    Build,
    /// Recorded, and a decision to build nothing whose reason contains this text.
    Skip(&'static str),
}

const GITLAB: &[(&str, Expect)] = &[
    ("push.json", Expect::Build),
    ("push_branch_create.json", Expect::Build),
    ("push_branch_delete.json", Expect::Skip("deleted")),
    ("tag_push.json", Expect::Skip("tag")),
    ("tag_push_delete.json", Expect::Skip("tag")),
    ("merge_request_open.json", Expect::Build),
    ("merge_request_reopen.json", Expect::Build),
    ("merge_request_update.json", Expect::Build),
    (
        "merge_request_update_draft.json",
        Expect::Skip("without new commits"),
    ),
    ("merge_request_approved.json", Expect::Skip("'approved'")),
    ("merge_request_approval.json", Expect::Skip("'approval'")),
    ("merge_request_merged.json", Expect::Skip("merged")),
    ("merge_request_close.json", Expect::Skip("closed")),
    ("note_merge_request.json", Expect::Skip("not a command")),
    ("pipeline.json", Expect::Skip("pipeline")),
    ("job.json", Expect::Skip("job")),
];

fn fixtures_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("CI_BRIDGE_FIXTURES")?;
    Some(PathBuf::from(dir))
}

fn event_header(payload: &Value) -> &'static str {
    match payload["object_kind"].as_str().unwrap_or("") {
        "push" => "Push Hook",
        "tag_push" => "Tag Push Hook",
        "merge_request" => "Merge Request Hook",
        "note" => "Note Hook",
        "pipeline" => "Pipeline Hook",
        "build" => "Job Hook",
        other => panic!("capture of unknown object_kind {other}"),
    }
}

fn project_path(payload: &Value) -> String {
    if let Some(path) = payload["project"]["path_with_namespace"].as_str() {
        return path.to_owned();
    }
    let homepage = payload["repository"]["homepage"]
        .as_str()
        .expect("a project or repository");
    url::Url::parse(homepage)
        .unwrap()
        .path()
        .trim_matches('/')
        .to_owned()
}

/// (GitLab project id, sha, ref) where the statuses of a building capture must land.
fn status_target(payload: &Value) -> (u64, String, String) {
    if payload["object_kind"] == "merge_request" {
        let attrs = &payload["object_attributes"];
        (
            attrs["source_project_id"].as_u64().unwrap(),
            attrs["last_commit"]["id"].as_str().unwrap().to_owned(),
            attrs["source_branch"].as_str().unwrap().to_owned(),
        )
    } else {
        let id = payload["project"]["id"]
            .as_u64()
            .or(payload["project_id"].as_u64())
            .unwrap();
        let branch = payload["ref"]
            .as_str()
            .unwrap()
            .trim_start_matches("refs/heads/");
        (
            id,
            payload["after"].as_str().unwrap().to_owned(),
            branch.to_owned(),
        )
    }
}

async fn drive(path: &Path, expect: &Expect, as_system_hook: bool) {
    let body = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let payload: Value = serde_json::from_str(&body).expect("captures are JSON");
    let project = project_path(&payload);
    let options = Options {
        projects: Some(format!(
            "[[projects]]\ngitlab = \"{project}\"\njob = \"{}\"\n",
            crate::support::JOB
        )),
        ..Options::default()
    };
    let app = TestApp::spawn_with(options).await;
    if let Expect::Build = expect {
        let (project_id, _, _) = status_target(&payload);
        app.gitlab.add_project(project_id, &project);
    }
    let header = if as_system_hook {
        "System Hook"
    } else {
        event_header(&payload)
    };
    let name = path.file_name().unwrap().to_string_lossy().into_owned();

    let response = app
        .post_gitlab(
            header,
            &body,
            &[("Idempotency-Key", &format!("conformance-{name}"))],
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED, "{name}");
    let event_id = response.json::<Value>().await.unwrap()["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let again = app
        .post_gitlab(
            header,
            &body,
            &[("Idempotency-Key", &format!("conformance-{name}"))],
        )
        .await;
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "{name}: a redelivery is a duplicate"
    );

    match expect {
        Expect::Build => {
            let (project_id, sha, git_ref) = status_target(&payload);
            let statuses = eventually(&format!("{name}: a final status"), WAIT, || async {
                let statuses = app.gitlab.statuses(project_id, &sha);
                statuses
                    .iter()
                    .any(|s| s.state == "success")
                    .then_some(statuses)
            })
            .await;
            // Merge requests also carry the four-eyes status; the build's is `jenkins`.
            let posts: Vec<String> = app
                .gitlab
                .status_posts()
                .into_iter()
                .filter(|p| p.name == "jenkins")
                .filter_map(|p| p.state)
                .collect();
            assert_eq!(posts, ["pending", "running", "success"], "{name}");
            assert!(
                statuses
                    .iter()
                    .all(|s| s.ref_ == git_ref
                        && ["jenkins", "four-eyes"].contains(&s.name.as_str())),
                "{name}: {statuses:?}"
            );
            assert_eq!(app.jenkins.triggers().len(), 1, "{name}: exactly one build");
        }
        Expect::Skip(reason) => {
            let record = eventually(&format!("{name}: the decision"), WAIT, || async {
                let record: Value = app
                    .admin_get(&format!("/api/v1/events/{event_id}"))
                    .await
                    .json()
                    .await
                    .ok()?;
                record["event"]["processed_at"].is_i64().then_some(record)
            })
            .await;
            let decision = &record["event"]["outcome"]["decisions"][0];
            assert_eq!(decision["decision"], "skip", "{name}: {record}");
            let text = decision["reason"].as_str().unwrap_or("");
            assert!(
                text.contains(reason),
                "{name}: reason {text:?} lacks {reason:?}"
            );
            assert!(app.jenkins.triggers().is_empty(), "{name}: nothing built");
            assert!(
                app.gitlab
                    .status_posts()
                    .iter()
                    .all(|p| p.name != "jenkins"),
                "{name}: no build status"
            );
        }
    }
}

#[tokio::test]
async fn every_real_gitlab_capture_has_its_documented_effect() {
    let Some(dir) = fixtures_dir() else {
        eprintln!("CI_BRIDGE_FIXTURES is not set: the conformance test checks nothing");
        return;
    };
    let gitlab = dir.join("gitlab");
    assert!(
        gitlab.is_dir(),
        "CI_BRIDGE_FIXTURES is set but {} is missing",
        gitlab.display()
    );
    let mut found: Vec<String> = std::fs::read_dir(&gitlab)
        .unwrap()
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    found.sort();
    for name in &found {
        assert!(
            GITLAB.iter().any(|(known, _)| known == name),
            "capture {name} has no expected effect here"
        );
    }
    for (name, expect) in GITLAB {
        let path = gitlab.join(name);
        assert!(path.is_file(), "capture {} is missing", path.display());
        drive(&path, expect, false).await;
    }
    // A system hook sends every event as `System Hook`; the payload's kind decides.
    drive(
        &gitlab.join("merge_request_open.json"),
        &Expect::Build,
        true,
    )
    .await;
}

#[test]
fn every_real_jenkins_capture_parses_as_ci_bridge_reads_it() {
    use ci_bridge::jenkins::client::{parse_queue_item, parse_run, QueueState};

    let Some(dir) = fixtures_dir() else {
        eprintln!("CI_BRIDGE_FIXTURES is not set: the conformance test checks nothing");
        return;
    };
    let read = |name: &str| {
        let path = dir.join("jenkins").join(name);
        std::fs::read(&path)
            .unwrap_or_else(|e| panic!("capture {} is missing: {e}", path.display()))
    };
    assert_eq!(
        parse_queue_item(&read("queue-item-left-executable.json")).unwrap(),
        QueueState::Started { number: 14 }
    );
    assert_eq!(
        parse_queue_item(&read("queue-item-cancelled.json")).unwrap(),
        QueueState::Cancelled
    );
    assert!(matches!(
        parse_queue_item(&read("queue-item-waiting.json")).unwrap(),
        QueueState::Waiting { .. }
    ));
    assert!(matches!(
        parse_queue_item(&read("queue-item-blocked.json")).unwrap(),
        QueueState::Waiting { .. }
    ));
    let finished = parse_run(&read("build-finished-success.json")).unwrap();
    assert!(!finished.building);
    assert_eq!(finished.result.as_deref(), Some("SUCCESS"));
    let running = parse_run(&read("build-pipeline-running.json")).unwrap();
    assert!(running.building);
    assert_eq!(running.result, None);
    let crumb: Value = serde_json::from_slice(&read("crumb-issuer.json")).unwrap();
    assert_eq!(crumb["crumbRequestField"], "Jenkins-Crumb");
}
