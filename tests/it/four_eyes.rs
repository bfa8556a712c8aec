//! Four eyes: the `four-eyes` status waits for an approver who is neither the merge
//! request's author nor a committer, and the summary note sums every check up, edited in
//! place. Also the helpers the other quality tests share.

use ci_bridge_fakes::gitlab::{CommitStatus, User};
use serde_json::{json, Value};

use crate::{
    payloads::{self, PROJECT_ID, SHA_A, SHA_C},
    support::{eventually, Options, TestApp, JOB, PROJECT, WAIT},
};

pub const SONAR_SECRET: &str = "sonar-test-secret-0123456789";
pub const IID: u64 = 5;

/// A world whose project has the quality checks on, SonarQube key `collector`.
pub async fn quality_app(project_extra: &str, extra: &str) -> TestApp {
    let options = Options {
        projects: Some(format!(
            "[[projects]]\ngitlab = \"{PROJECT}\"\njob = \"{JOB}\"\n[projects.quality]\n\
             merge_request_checks = true\nsonarqube_project = [\"collector\"]\n{project_extra}\n"
        )),
        extra_config: format!("[sonarqube]\nwebhook_secret = \"{SONAR_SECRET}\"\n{extra}"),
        ..Options::default()
    };
    let app = TestApp::spawn_with(options).await;
    app.gitlab.add_project(PROJECT_ID, PROJECT);
    app
}

pub fn ada() -> User {
    User::new(7, "ada", "Ada Lovelace")
}

pub fn bob() -> User {
    User::new(8, "bob", "Bob Noyce")
}

/// A merge request event on !5 performed by `user`.
pub fn mr_event(action: &str, sha: &str, user: &User) -> String {
    let oldrev = (action == "update").then_some(payloads::SHA_B);
    let mut v: Value =
        serde_json::from_str(&payloads::merge_request(PROJECT, action, sha, oldrev)).unwrap();
    v["user"] = json!({"id": user.id, "username": user.username, "name": user.name,
        "email": format!("{}@example.com", user.username)});
    if action == "merge" {
        v["object_attributes"]["state"] = "merged".into();
        v["object_attributes"]["merge_commit_sha"] = SHA_C.into();
    }
    v.to_string()
}

/// Opens !5 at `sha` (authored by Ada, one commit by Ada) in GitLab and tells ci-bridge.
pub async fn open_mr(app: &TestApp, sha: &str) {
    app.gitlab
        .add_merge_request(PROJECT_ID, IID, ada(), "feature/login", "main", sha);
    app.gitlab.set_mr_commits(
        PROJECT_ID,
        IID,
        vec![(sha.into(), "ada@example.com".into(), "Ada Lovelace".into())],
    );
    let response = app
        .post_gitlab("Merge Request Hook", &mr_event("open", sha, &ada()), &[])
        .await;
    assert_eq!(response.status(), 202);
}

/// The states GitLab went through for one status name on `sha`, oldest first.
pub fn states(app: &TestApp, sha: &str, name: &str) -> Vec<String> {
    app.gitlab
        .statuses(PROJECT_ID, sha)
        .into_iter()
        .filter(|s| s.name == name)
        .map(|s| s.state)
        .collect()
}

/// Waits until the newest status `name` on `sha` is in `state`.
pub async fn status_becomes(app: &TestApp, sha: &str, name: &str, state: &str) -> CommitStatus {
    eventually(&format!("{name} {state}"), WAIT, || async {
        let last = app
            .gitlab
            .statuses(PROJECT_ID, sha)
            .into_iter()
            .rfind(|s| s.name == name)?;
        (last.state == state).then_some(last)
    })
    .await
}

/// Waits until the summary note contains `text`; returns the notes of !5.
pub async fn note_shows(app: &TestApp, text: &str) -> Vec<ci_bridge_fakes::gitlab::Note> {
    eventually(&format!("a note showing {text:?}"), WAIT, || async {
        let notes = app.gitlab.notes(PROJECT_ID, IID);
        notes.iter().any(|n| n.body.contains(text)).then_some(notes)
    })
    .await
}

#[tokio::test]
async fn an_mr_approved_only_by_its_author_keeps_four_eyes_pending() {
    let app = quality_app("", "").await;
    open_mr(&app, SHA_A).await;
    status_becomes(&app, SHA_A, "four-eyes", "pending").await;

    app.gitlab.set_approvals(PROJECT_ID, IID, vec![ada()]);
    let body = mr_event("approval", SHA_A, &ada());
    app.post_gitlab("Merge Request Hook", &body, &[]).await;
    note_shows(&app, "approved only by an author or committer (@ada)").await;

    assert_eq!(states(&app, SHA_A, "four-eyes"), ["pending"]);
    assert!(app.gitlab.quick_actions().is_empty());
}

#[tokio::test]
async fn a_reviewers_approval_succeeds_and_its_withdrawal_sets_four_eyes_back_to_pending() {
    let app = quality_app("", "").await;
    open_mr(&app, SHA_A).await;
    status_becomes(&app, SHA_A, "four-eyes", "pending").await;

    app.gitlab.set_approvals(PROJECT_ID, IID, vec![bob()]);
    let body = mr_event("approved", SHA_A, &bob());
    app.post_gitlab("Merge Request Hook", &body, &[]).await;
    let success = status_becomes(&app, SHA_A, "four-eyes", "success").await;
    assert_eq!(success.description.as_deref(), Some("approved by @bob"));
    assert_eq!(success.ref_, "feature/login");

    app.gitlab.set_approvals(PROJECT_ID, IID, vec![]);
    let body = mr_event("unapproval", SHA_A, &bob());
    app.post_gitlab("Merge Request Hook", &body, &[]).await;
    status_becomes(&app, SHA_A, "four-eyes", "pending").await;
    let posted: Vec<String> = app
        .gitlab
        .status_posts()
        .into_iter()
        .filter(|p| p.name == "four-eyes")
        .filter_map(|p| p.state)
        .collect();
    assert_eq!(posted, ["pending", "success", "pending"]);
    assert_eq!(
        states(&app, SHA_A, "four-eyes"),
        ["success", "pending"],
        "the withdrawal is a new pending job after the success"
    );
}

#[tokio::test]
async fn a_committer_who_approves_does_not_count() {
    let app = quality_app("", "").await;
    app.gitlab
        .add_merge_request(PROJECT_ID, IID, ada(), "feature/login", "main", SHA_A);
    app.gitlab.set_mr_commits(
        PROJECT_ID,
        IID,
        vec![(SHA_A.into(), "bob@example.com".into(), "Bob Noyce".into())],
    );
    app.gitlab.set_approvals(PROJECT_ID, IID, vec![bob()]);
    let body = mr_event("open", SHA_A, &ada());
    app.post_gitlab("Merge Request Hook", &body, &[]).await;
    note_shows(&app, "(@bob)").await;
    assert_eq!(states(&app, SHA_A, "four-eyes"), ["pending"]);
}

#[tokio::test]
async fn the_summary_note_is_posted_once_and_edited_in_place() {
    let app = quality_app("", "").await;
    open_mr(&app, SHA_A).await;
    let notes = note_shows(&app, "build #1 passed").await;
    assert_eq!(notes.len(), 1);
    let first = notes[0].clone();
    assert!(first.body.starts_with("<!-- ci-bridge:summary -->"));
    assert_eq!(first.author.username, "ci-bridge");

    app.gitlab.set_approvals(PROJECT_ID, IID, vec![bob()]);
    let body = mr_event("approval", SHA_A, &bob());
    app.post_gitlab("Merge Request Hook", &body, &[]).await;
    let notes = note_shows(&app, "approved by @bob").await;
    assert_eq!(notes.len(), 1, "edited, not posted again: {notes:?}");
    assert_eq!(notes[0].id, first.id);
    assert!(app.gitlab.quick_actions().is_empty());
    for line in notes[0].body.lines() {
        assert!(!line.trim_start().starts_with('/'), "{line}");
    }
}

/// A merge request ci-bridge first hears of when it is merged gets its evidence, but no
/// summary note: nobody reads a note there any more.
#[tokio::test]
async fn a_merge_request_first_seen_merged_gets_evidence_and_no_note() {
    let app = quality_app("", "").await;
    app.gitlab
        .add_merge_request(PROJECT_ID, IID, ada(), "feature/login", "main", SHA_A);
    app.gitlab.set_approvals(PROJECT_ID, IID, vec![bob()]);
    let merge = mr_event("merge", SHA_A, &bob());
    assert_eq!(
        app.post_gitlab("Merge Request Hook", &merge, &[])
            .await
            .status(),
        202
    );
    crate::evidence::evidence_recorded(&app).await;
    eventually("every job of the merge done", WAIT, || async {
        let stats = app.store.queue_stats().await.ok()?;
        (stats.ready == 0 && stats.waiting == 0).then_some(())
    })
    .await;
    assert!(app.gitlab.notes(PROJECT_ID, IID).is_empty());
}
