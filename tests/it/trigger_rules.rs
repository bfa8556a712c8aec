//! The trigger rules and the merge-request lifecycle: what builds, what does not (with a
//! recorded reason), and what an older build becomes when a newer commit arrives.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    four_eyes::status_becomes,
    payloads::{self, PROJECT_ID, SHA_A, SHA_B, SHA_C},
    support::{eventually, Options, TestApp, JOB, JOB_PARAMS, PROJECT, WAIT},
};

pub fn with_rules(rules: &str, extra_project_keys: &str) -> Options {
    Options {
        projects: Some(format!(
            "[[projects]]\ngitlab = \"{PROJECT}\"\njob = \"{JOB}\"\n{extra_project_keys}\n[projects.triggers]\n{rules}\n"
        )),
        ..Options::default()
    }
}

pub async fn spawn(options: Options) -> TestApp {
    let app = TestApp::spawn_with(options).await;
    app.gitlab.add_project(PROJECT_ID, PROJECT);
    app
}

/// Posts a webhook and returns the decisions recorded for it.
pub async fn decisions(app: &TestApp, event: &str, body: &str) -> Vec<Value> {
    let response = app.post_gitlab(event, body, &[]).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED, "{body}");
    let id = response.json::<Value>().await.unwrap()["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("the decisions", WAIT, || async {
        let record: Value = app
            .admin_get(&format!("/api/v1/events/{id}"))
            .await
            .json()
            .await
            .ok()?;
        let decisions = record["event"]["outcome"]["decisions"].as_array()?.clone();
        record["event"]["processed_at"]
            .is_i64()
            .then_some(decisions)
    })
    .await
}

pub fn kinds(decisions: &[Value]) -> Vec<String> {
    decisions
        .iter()
        .map(|d| d["decision"].as_str().unwrap_or("").to_owned())
        .collect()
}

pub fn reason(decisions: &[Value]) -> String {
    decisions
        .iter()
        .filter_map(|d| d["reason"].as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn branch_filters_decide_which_pushes_build() {
    let app = spawn(with_rules(
        "branches = [\"release/*\", \"main\"]\nexclude_branches = [\"release/old\"]",
        "",
    ))
    .await;
    let main = decisions(
        &app,
        "Push Hook",
        &payloads::push(PROJECT, "main", SHA_B, SHA_A),
    )
    .await;
    assert_eq!(kinds(&main), ["build"]);
    let feature = decisions(
        &app,
        "Push Hook",
        &payloads::push(PROJECT, "feature/x", SHA_B, SHA_C),
    )
    .await;
    assert!(reason(&feature).contains("branch filter"), "{feature:?}");
    let old = decisions(
        &app,
        "Push Hook",
        &payloads::push(PROJECT, "release/old", SHA_A, SHA_C),
    )
    .await;
    assert!(reason(&old).contains("branch filter"), "{old:?}");
}

#[tokio::test]
async fn ci_skip_in_the_head_commit_skips_the_build() {
    let app = spawn(Options::default()).await;
    let body = payloads::push_with_message(PROJECT, "main", SHA_A, "Tidy up [skip ci]");
    let skipped = decisions(&app, "Push Hook", &body).await;
    assert!(reason(&skipped).contains("ci skip"), "{skipped:?}");
    assert!(app.jenkins.triggers().is_empty());
}

#[tokio::test]
async fn a_draft_builds_only_once_it_leaves_draft() {
    let app = spawn(Options::default()).await;
    let mut draft: Value =
        serde_json::from_str(&payloads::merge_request(PROJECT, "open", SHA_A, None)).unwrap();
    draft["object_attributes"]["draft"] = true.into();
    let opened = decisions(&app, "Merge Request Hook", &draft.to_string()).await;
    assert!(reason(&opened).contains("draft"), "{opened:?}");

    let ready = payloads::merge_request_changed(
        PROJECT,
        SHA_A,
        false,
        json!({ "draft": { "previous": true, "current": false } }),
    );
    assert_eq!(
        kinds(&decisions(&app, "Merge Request Hook", &ready).await),
        ["build"]
    );
}

#[tokio::test]
async fn label_and_title_edits_do_not_rebuild_but_a_forcing_label_does() {
    let app = spawn(with_rules("force_build_labels = [\"rebuild\"]", "")).await;
    let labels = |previous: &[&str], current: &[&str]| {
        let titles = |names: &[&str]| {
            names
                .iter()
                .map(|n| json!({ "title": n }))
                .collect::<Vec<_>>()
        };
        json!({ "labels": { "previous": titles(previous), "current": titles(current) } })
    };
    let title = payloads::merge_request_changed(
        PROJECT,
        SHA_A,
        false,
        json!({ "title": { "previous": "a", "current": "b" } }),
    );
    assert!(reason(&decisions(&app, "Merge Request Hook", &title).await)
        .contains("without new commits"));
    let other_label = payloads::merge_request_changed(PROJECT, SHA_A, false, labels(&[], &["bug"]));
    assert!(
        reason(&decisions(&app, "Merge Request Hook", &other_label).await)
            .contains("without new commits")
    );
    let forcing = payloads::merge_request_changed(
        PROJECT,
        SHA_A,
        false,
        labels(&["bug"], &["bug", "rebuild"]),
    );
    assert_eq!(
        kinds(&decisions(&app, "Merge Request Hook", &forcing).await),
        ["build"]
    );
}

#[tokio::test]
async fn a_push_and_the_merge_request_update_for_the_same_commit_make_one_build() {
    let app = spawn(Options::default()).await;
    let push = decisions(
        &app,
        "Push Hook",
        &payloads::push(PROJECT, "feature/login", SHA_B, SHA_A),
    )
    .await;
    assert_eq!(kinds(&push), ["build"]);
    let update = payloads::merge_request(PROJECT, "update", SHA_A, Some(SHA_B));
    let mr = decisions(&app, "Merge Request Hook", &update).await;
    assert_eq!(kinds(&mr), ["deduplicated"], "{mr:?}");
    assert_eq!(mr[0]["build_id"], push[0]["build_id"]);
    assert_eq!(app.jenkins.triggers().len(), 1);
}

#[tokio::test]
async fn two_merge_requests_from_one_branch_into_different_targets_are_two_builds() {
    let app = spawn(Options::default()).await;
    app.jenkins.hold_queue(true);
    let into_main =
        payloads::merge_request_from(PROJECT, PROJECT_ID, "open", SHA_A, None, "bug2", "main", 5);
    let into_bug3 =
        payloads::merge_request_from(PROJECT, PROJECT_ID, "open", SHA_A, None, "bug2", "bug3", 6);
    assert_eq!(
        kinds(&decisions(&app, "Merge Request Hook", &into_main).await),
        ["build"]
    );
    assert_eq!(
        kinds(&decisions(&app, "Merge Request Hook", &into_bug3).await),
        ["build"]
    );
    let queue_ids = eventually("two queue items", WAIT, || async {
        let ids: Vec<u64> = app
            .jenkins
            .triggers()
            .iter()
            .filter_map(|t| t.queue_id)
            .collect();
        (ids.len() == 2).then_some(ids)
    })
    .await;
    assert_ne!(
        queue_ids[0], queue_ids[1],
        "Jenkins must not merge them into one queue item"
    );
}

#[tokio::test]
async fn three_quick_pushes_to_a_merge_request_leave_one_build_and_two_canceled() {
    let app = spawn(Options::default()).await;
    app.jenkins.hold_queue(true);
    let shas = [SHA_A, SHA_B, SHA_C];
    let mut previous = payloads::ZERO;
    for sha in shas {
        let body = payloads::merge_request(
            PROJECT,
            if previous == payloads::ZERO {
                "open"
            } else {
                "update"
            },
            sha,
            Some(previous).filter(|p| *p != payloads::ZERO),
        );
        decisions(&app, "Merge Request Hook", &body).await;
        // Each one reaches the Jenkins queue before the next arrives.
        eventually("the trigger", WAIT, || async {
            app.jenkins
                .triggers()
                .iter()
                .any(|t| t.params["gitlabAfter"] == sha)
                .then_some(())
        })
        .await;
        previous = sha;
    }
    for (sha, by) in [(SHA_A, SHA_B), (SHA_B, SHA_C)] {
        let last = status_becomes(&app, sha, "jenkins", "canceled").await;
        assert_eq!(
            last.description.as_deref(),
            Some(&*format!("superseded by {}", &by[..8]))
        );
    }
    eventually(
        "the two older queue items cancelled in Jenkins",
        WAIT,
        || async {
            (app.jenkins
                .queue_items()
                .iter()
                .filter(|i| i.cancelled)
                .count()
                == 2)
                .then_some(())
        },
    )
    .await;
    app.jenkins.hold_queue(false);
    let last = status_becomes(&app, SHA_C, "jenkins", "success").await;
    assert_eq!(last.state, "success");
    assert_eq!(app.jenkins.builds().len(), 1);
}

#[tokio::test]
async fn closing_a_merge_request_cancels_its_queued_build() {
    let app = spawn(Options::default()).await;
    app.jenkins.hold_queue(true);
    decisions(
        &app,
        "Merge Request Hook",
        &payloads::merge_request(PROJECT, "open", SHA_A, None),
    )
    .await;
    eventually("the trigger", WAIT, || async {
        app.jenkins.triggers().first().and_then(|t| t.queue_id)
    })
    .await;
    let closed = decisions(
        &app,
        "Merge Request Hook",
        &payloads::merge_request(PROJECT, "close", SHA_A, None),
    )
    .await;
    assert!(kinds(&closed).contains(&"cancel".to_owned()), "{closed:?}");
    let last = status_becomes(&app, SHA_A, "jenkins", "canceled").await;
    assert_eq!(last.description.as_deref(), Some("merge request closed"));
}

#[tokio::test]
async fn external_pipelines_our_statuses_create_trigger_nothing() {
    let app = spawn(Options::default()).await;
    let echo = decisions(
        &app,
        "Pipeline Hook",
        &payloads::pipeline(PROJECT, SHA_A, "external"),
    )
    .await;
    assert!(reason(&echo).contains("external pipeline"), "{echo:?}");
    assert!(app.jenkins.triggers().is_empty());
}

#[tokio::test]
async fn a_branch_with_a_slash_reaches_its_multibranch_job() {
    let app = spawn(Options {
        projects: Some(format!(
            "[[projects]]\ngitlab = \"{PROJECT}\"\njob = \"analytics/collector/{{branch}}\"\n"
        )),
        ..Options::default()
    })
    .await;
    app.jenkins
        .add_job("analytics/collector/feature%2Fx", JOB_PARAMS);
    decisions(
        &app,
        "Push Hook",
        &payloads::push(PROJECT, "feature/x", SHA_B, SHA_A),
    )
    .await;
    status_becomes(&app, SHA_A, "jenkins", "success").await;
    assert_eq!(
        app.jenkins.builds()[0].job,
        "analytics/collector/feature%2Fx"
    );
}

#[tokio::test]
async fn a_branch_job_jenkins_never_creates_is_reported_after_the_wait() {
    let app = spawn(Options {
        projects: Some(format!(
            "[[projects]]\ngitlab = \"{PROJECT}\"\njob = \"analytics/collector/{{branch}}\"\n"
        )),
        extra_config: String::new(),
        ..Options::default()
    })
    .await;
    decisions(
        &app,
        "Push Hook",
        &payloads::push(PROJECT, "feature/y", SHA_B, SHA_A),
    )
    .await;
    let last = eventually("a failed status", Duration::from_secs(20), || async {
        let last = app.gitlab.statuses(PROJECT_ID, SHA_A).last().cloned()?;
        (last.state == "failed").then_some(last)
    })
    .await;
    assert!(
        last.description.unwrap().contains("not indexed"),
        "the description says why"
    );
}
