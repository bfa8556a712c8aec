//! The main path: a webhook becomes exactly one Jenkins build, and GitLab shows pending,
//! running and the result on the right project, commit and ref.

use std::collections::BTreeMap;

use ci_bridge_fakes::gitlab::CommitStatus;
use reqwest::StatusCode;

use crate::{
    payloads::{self, FORK_ID, PROJECT_ID, SHA_A, SHA_B, ZERO},
    support::{eventually, Options, TestApp, CALLBACK_TOKEN, JOB, PROJECT, WAIT},
};

/// The states GitLab went through for one status name, oldest first.
fn states(statuses: &[CommitStatus], name: &str) -> Vec<String> {
    statuses
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.state.clone())
        .collect()
}

/// The `jenkins` statuses of `sha` once the last is final (merge requests also carry the
/// `four-eyes` status, which the tests of approvals look at).
async fn final_states(app: &TestApp, project_id: u64, sha: &str) -> Vec<CommitStatus> {
    eventually("a final commit status", WAIT, || async {
        let mut statuses = app.gitlab.statuses(project_id, sha);
        statuses.retain(|s| s.name == "jenkins");
        let done = statuses
            .last()
            .is_some_and(|s| matches!(s.state.as_str(), "success" | "failed" | "canceled"));
        done.then_some(statuses)
    })
    .await
}

fn setup_gitlab(app: &TestApp) {
    app.gitlab.add_project(PROJECT_ID, PROJECT);
    app.gitlab.add_project(FORK_ID, "ada/collector");
}

#[tokio::test]
async fn a_push_builds_once_with_the_gitlab_plugin_parameters_and_reports_every_stage() {
    let app = TestApp::spawn().await;
    setup_gitlab(&app);
    let body = payloads::push(PROJECT, "main", SHA_B, SHA_A);
    assert_eq!(
        app.post_gitlab("Push Hook", &body, &[]).await.status(),
        StatusCode::ACCEPTED
    );

    let statuses = final_states(&app, PROJECT_ID, SHA_A).await;
    assert_eq!(
        states(&statuses, "jenkins"),
        ["success"],
        "one status job, moved forward"
    );
    let posts: Vec<_> = app
        .gitlab
        .status_posts()
        .into_iter()
        .map(|p| p.state.unwrap_or_default())
        .collect();
    assert_eq!(posts, ["pending", "running", "success"]);
    let status = &statuses[0];
    assert_eq!(status.ref_, "main");
    assert!(
        status
            .description
            .as_deref()
            .unwrap_or("")
            .contains("passed"),
        "{status:?}"
    );
    assert!(
        status
            .target_url
            .as_deref()
            .unwrap_or("")
            .contains("/job/analytics/job/collector-ci/1/"),
        "{status:?}"
    );

    let triggers = app.jenkins.triggers();
    assert_eq!(triggers.len(), 1);
    let params: &BTreeMap<String, String> = &triggers[0].params;
    assert_eq!(params["gitlabActionType"], "PUSH");
    assert_eq!(params["gitlabBranch"], "main");
    assert_eq!(params["gitlabAfter"], SHA_A);
    assert_eq!(params["gitlabBefore"], SHA_B);
    assert_eq!(params["gitlabUserUsername"], "ada");
    assert!(!params["CI_BRIDGE_BUILD_ID"].is_empty());
}

#[tokio::test]
async fn a_merge_request_from_a_fork_reports_on_the_source_project_and_branch() {
    let app = TestApp::spawn().await;
    setup_gitlab(&app);
    let body = payloads::merge_request_from(
        PROJECT,
        FORK_ID,
        "open",
        SHA_A,
        None,
        "feature/login",
        "main",
        5,
    );
    assert_eq!(
        app.post_gitlab("Merge Request Hook", &body, &[])
            .await
            .status(),
        StatusCode::ACCEPTED
    );

    let statuses = final_states(&app, FORK_ID, SHA_A).await;
    assert_eq!(statuses.last().unwrap().ref_, "feature/login");
    assert!(app.gitlab.statuses(PROJECT_ID, SHA_A).is_empty());
    let params = &app.jenkins.triggers()[0].params;
    assert_eq!(params["gitlabActionType"], "MERGE");
    assert_eq!(params["gitlabMergeRequestIid"], "5");
    assert_eq!(params["gitlabSourceBranch"], "feature/login");
    assert_eq!(params["gitlabTargetBranch"], "main");
    assert_eq!(params["gitlabMergeRequestLastCommit"], SHA_A);
    assert_eq!(
        params["gitlabMergeRequestTargetProjectId"],
        PROJECT_ID.to_string()
    );
}

#[tokio::test]
async fn events_that_bring_no_new_code_build_nothing_and_say_why() {
    let app = TestApp::spawn().await;
    setup_gitlab(&app);
    let cases = [
        (
            "Merge Request Hook",
            payloads::merge_request(PROJECT, "update", SHA_A, None),
            "without new commits",
        ),
        (
            "Merge Request Hook",
            payloads::merge_request(PROJECT, "close", SHA_A, None),
            "closed",
        ),
        (
            "Merge Request Hook",
            payloads::merge_request(PROJECT, "merge", SHA_A, None),
            "merged",
        ),
        (
            "Push Hook",
            payloads::push(PROJECT, "gone", SHA_A, ZERO),
            "deleted",
        ),
    ];
    for (event, body, reason) in cases {
        let response: serde_json::Value = app
            .post_gitlab(event, &body, &[])
            .await
            .json()
            .await
            .unwrap();
        let id = response["event_id"].as_str().unwrap().to_owned();
        let record = eventually("the decision", WAIT, || async {
            let record: serde_json::Value = app
                .admin_get(&format!("/api/v1/events/{id}"))
                .await
                .json()
                .await
                .ok()?;
            record["event"]["processed_at"].is_i64().then_some(record)
        })
        .await;
        let decision = &record["event"]["outcome"]["decisions"][0];
        assert_eq!(decision["decision"], "skip", "{record}");
        assert!(
            decision["reason"].as_str().unwrap().contains(reason),
            "{record}"
        );
    }
    assert!(app.jenkins.triggers().is_empty());
    assert!(app
        .gitlab
        .status_posts()
        .iter()
        .all(|p| p.name != "jenkins"));
}

#[tokio::test]
async fn the_callback_reports_the_result_and_a_repeated_callback_changes_nothing() {
    let app = TestApp::spawn().await;
    setup_gitlab(&app);
    app.jenkins.hold_builds(true);
    app.post_gitlab(
        "Push Hook",
        &payloads::push(PROJECT, "main", SHA_B, SHA_A),
        &[],
    )
    .await;
    let build_id = eventually("a running build", WAIT, || async {
        let running = app
            .gitlab
            .statuses(PROJECT_ID, SHA_A)
            .iter()
            .any(|s| s.state == "running");
        let trigger = app.jenkins.triggers().into_iter().next()?;
        running.then(|| trigger.params["CI_BRIDGE_BUILD_ID"].clone())
    })
    .await;

    let callback = serde_json::json!({
        "build_id": build_id, "result": "FAILURE",
        "build_url": "https://jenkins.example.invalid/job/analytics/job/collector-ci/1/"
    });
    assert_eq!(
        app.post_callback(callback.clone(), "wrong").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let first = app.post_callback(callback.clone(), CALLBACK_TOKEN).await;
    assert_eq!(first.status(), StatusCode::OK);
    let statuses = final_states(&app, PROJECT_ID, SHA_A).await;
    assert_eq!(statuses.last().unwrap().state, "failed");

    let again: serde_json::Value = app
        .post_callback(callback, CALLBACK_TOKEN)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["status"], "duplicate");
    // The build, still running in Jenkins, later finishes SUCCESS: the result stays.
    app.jenkins.hold_builds(false);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let posts: Vec<_> = app
        .gitlab
        .status_posts()
        .into_iter()
        .map(|p| p.state.unwrap_or_default())
        .collect();
    assert_eq!(posts, ["pending", "running", "failed"]);
}

#[tokio::test]
async fn callbacks_for_unknown_builds_or_with_bad_bodies_are_refused() {
    let app = TestApp::spawn().await;
    let unknown = serde_json::json!({ "build_id": "nope", "result": "SUCCESS" });
    assert_eq!(
        app.post_callback(unknown, CALLBACK_TOKEN).await.status(),
        StatusCode::NOT_FOUND
    );
    let bad_result = serde_json::json!({ "build_id": "nope", "result": "GREEN" });
    assert_eq!(
        app.post_callback(bad_result, CALLBACK_TOKEN).await.status(),
        StatusCode::BAD_REQUEST
    );
    let not_json = app
        .http
        .post(format!("{}/hooks/jenkins", app.url))
        .bearer_auth(CALLBACK_TOKEN)
        .header("Content-Type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_jenkins_result_maps_to_its_gitlab_state() {
    for (result, state) in [
        ("UNSTABLE", "failed"),
        ("FAILURE", "failed"),
        ("ABORTED", "canceled"),
        ("NOT_BUILT", "canceled"),
    ] {
        let app = TestApp::spawn().await;
        setup_gitlab(&app);
        app.jenkins.set_result(JOB, result);
        app.post_gitlab(
            "Push Hook",
            &payloads::push(PROJECT, "main", SHA_B, SHA_A),
            &[],
        )
        .await;
        let statuses = final_states(&app, PROJECT_ID, SHA_A).await;
        assert_eq!(statuses.last().unwrap().state, state, "{result}");
    }
}

#[tokio::test]
async fn a_queue_item_cancelled_before_it_ran_ends_canceled() {
    let app = TestApp::spawn().await;
    setup_gitlab(&app);
    app.jenkins.hold_queue(true);
    app.post_gitlab(
        "Push Hook",
        &payloads::push(PROJECT, "main", SHA_B, SHA_A),
        &[],
    )
    .await;
    let queue_id = eventually("a queued trigger with pending status", WAIT, || async {
        let pending = app
            .gitlab
            .statuses(PROJECT_ID, SHA_A)
            .iter()
            .any(|s| s.state == "pending");
        let id = app.jenkins.triggers().first()?.queue_id?;
        pending.then_some(id)
    })
    .await;
    app.jenkins.cancel_queue_item(queue_id);
    let statuses = final_states(&app, PROJECT_ID, SHA_A).await;
    let last = statuses.last().unwrap();
    assert_eq!(last.state, "canceled");
    assert!(
        last.description.as_deref().unwrap().contains("cancelled"),
        "{last:?}"
    );
}

#[tokio::test]
async fn a_job_jenkins_does_not_have_fails_the_status_with_the_reason() {
    let options = Options {
        projects: Some(format!(
            "[[projects]]\ngitlab = \"{PROJECT}\"\njob = \"analytics/missing\"\n"
        )),
        ..Options::default()
    };
    let app = TestApp::spawn_with(options).await;
    setup_gitlab(&app);
    app.post_gitlab(
        "Push Hook",
        &payloads::push(PROJECT, "main", SHA_B, SHA_A),
        &[],
    )
    .await;
    let statuses = final_states(&app, PROJECT_ID, SHA_A).await;
    let last = statuses.last().unwrap();
    assert_eq!(last.state, "failed");
    assert!(
        last.description.as_deref().unwrap().contains("not found"),
        "{last:?}"
    );
    assert_eq!(app.jenkins.triggers().len(), 1, "a 404 is not retried");
}

#[tokio::test]
async fn a_build_queued_when_the_service_stops_is_finished_after_a_restart() {
    let mut app = TestApp::spawn().await;
    setup_gitlab(&app);
    app.jenkins.hold_queue(true);
    app.post_gitlab(
        "Push Hook",
        &payloads::push(PROJECT, "main", SHA_B, SHA_A),
        &[],
    )
    .await;
    eventually("a pending status", WAIT, || async {
        app.gitlab
            .statuses(PROJECT_ID, SHA_A)
            .iter()
            .any(|s| s.state == "pending")
            .then_some(())
    })
    .await;

    app.stop().await;
    app.jenkins.hold_queue(false);
    app.start().await;

    let statuses = final_states(&app, PROJECT_ID, SHA_A).await;
    assert_eq!(statuses.last().unwrap().state, "success");
    assert_eq!(
        app.jenkins.triggers().len(),
        1,
        "no second trigger after the restart"
    );
    let posts: Vec<_> = app
        .gitlab
        .status_posts()
        .into_iter()
        .map(|p| p.state.unwrap_or_default())
        .collect();
    assert_eq!(posts, ["pending", "running", "success"]);
}

#[tokio::test]
async fn events_accepted_while_jenkins_and_gitlab_fail_are_built_once_they_recover() {
    let app = TestApp::spawn().await;
    setup_gitlab(&app);
    app.jenkins.fail_next(2, 503);
    app.gitlab.fail_next(1, 500, None);
    app.post_gitlab(
        "Push Hook",
        &payloads::push(PROJECT, "main", SHA_B, SHA_A),
        &[],
    )
    .await;
    let statuses = eventually(
        "a final status after retries",
        std::time::Duration::from_secs(20),
        || async {
            let statuses = app.gitlab.statuses(PROJECT_ID, SHA_A);
            statuses
                .iter()
                .any(|s| s.state == "success")
                .then_some(statuses)
        },
    )
    .await;
    assert_eq!(states(&statuses, "jenkins"), ["success"]);
    assert_eq!(
        app.jenkins.builds().len(),
        1,
        "retries never doubled the build"
    );
}
