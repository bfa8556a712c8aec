//! Jenkins set up the ways real installations are: under a path prefix, reporting another
//! public URL, asking for session-bound crumbs, with jobs that are disabled.

use std::time::Duration;

use ci_bridge_fakes::jenkins::JenkinsOptions;

use crate::{
    payloads::{self, PROJECT_ID, SHA_A, SHA_B},
    support::{eventually, Options, TestApp, JOB, PROJECT, WAIT},
};

async fn run_one_push(app: &TestApp) -> String {
    app.gitlab.add_project(PROJECT_ID, PROJECT);
    app.post_gitlab(
        "Push Hook",
        &payloads::push(PROJECT, "main", SHA_B, SHA_A),
        &[],
    )
    .await;
    eventually("a final status", WAIT, || async {
        let last = app.gitlab.statuses(PROJECT_ID, SHA_A).last().cloned()?;
        (last.state != "pending" && last.state != "running").then_some(last.state)
    })
    .await
}

#[tokio::test]
async fn jenkins_under_a_path_prefix_reporting_a_foreign_public_url_still_works() {
    let options = Options {
        jenkins: JenkinsOptions {
            prefix: "/jenkins".into(),
            public_url: "https://jenkins.public.invalid/jenkins".into(),
            ..JenkinsOptions::default()
        },
        ..Options::default()
    };
    let app = TestApp::spawn_with(options).await;
    assert_eq!(run_one_push(&app).await, "success");
    assert_eq!(app.jenkins.triggers().len(), 1);
}

#[tokio::test]
async fn with_a_password_the_crumb_is_fetched_with_its_session_and_the_trigger_retried_once() {
    let options = Options {
        jenkins: JenkinsOptions {
            password_mode: true,
            ..JenkinsOptions::default()
        },
        ..Options::default()
    };
    let app = TestApp::spawn_with(options).await;
    assert_eq!(run_one_push(&app).await, "success");
    let triggers = app.jenkins.triggers();
    let statuses: Vec<u16> = triggers.iter().map(|t| t.status).collect();
    assert_eq!(
        statuses,
        [403, 201],
        "one refusal for the crumb, then one build"
    );
    assert_eq!(app.jenkins.builds().len(), 1);
}

#[tokio::test]
async fn a_disabled_job_fails_the_status_naming_the_reason() {
    let app = TestApp::spawn().await;
    app.jenkins.set_disabled(JOB, true);
    assert_eq!(run_one_push(&app).await, "failed");
    let last = app
        .gitlab
        .statuses(PROJECT_ID, SHA_A)
        .last()
        .cloned()
        .unwrap();
    assert!(last.description.unwrap().contains("disabled"));
}

#[tokio::test]
async fn without_a_callback_the_result_arrives_by_polling() {
    let options = Options {
        jenkins: JenkinsOptions {
            build_duration: Duration::from_millis(200),
            ..JenkinsOptions::default()
        },
        ..Options::default()
    };
    let app = TestApp::spawn_with(options).await;
    assert_eq!(run_one_push(&app).await, "success");
    let posts: Vec<_> = app
        .gitlab
        .status_posts()
        .into_iter()
        .map(|p| p.state.unwrap_or_default())
        .collect();
    assert_eq!(posts, ["pending", "running", "success"]);
}
