//! Drives the fake GitLab over real HTTP and checks it answers as strictly as GitLab.

mod gitlab_support;

use ci_bridge_fakes::gitlab::User;
use gitlab_support::{decode, human, Harness, MR, PROJECT, SHA, TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn pending_twice_text() -> &'static str {
    concat!(
        "Cannot transition status via :enqueue from :pending ",
        "(Reason(s): Status cannot transition via \"enqueue\")"
    )
}

#[tokio::test]
async fn missing_or_wrong_token_gets_401_and_bearer_is_accepted() {
    let h = Harness::start().await;
    let url = h.api(&format!("/projects/{PROJECT}/merge_requests/{MR}"));

    let (none, body) = decode(h.client.get(&url).send().await.unwrap()).await;
    assert_eq!(none, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({"message": "401 Unauthorized"}));
    let wrong = h.client.get(&url).header("PRIVATE-TOKEN", "nope");
    assert_eq!(
        wrong.send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    let bearer = h.client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    let (status, mr) = decode(bearer).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mr["source_branch"], "feature/x");
    assert_eq!(mr["sha"], SHA);
}

#[tokio::test]
async fn unknown_project_commit_and_route_get_gitlabs_404_bodies() {
    let h = Harness::start().await;
    let pending = json!({"state": "pending"});

    let url = h.api(&format!("/projects/77/statuses/{SHA}"));
    let (status, body) = h.note(Method::POST, &url, pending.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"message": "404 Project Not Found"}));

    let url = h.api(&format!("/projects/{PROJECT}/statuses/abc123"));
    let (status, body) = h.note(Method::POST, &url, pending).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"message": "404 Commit Not Found"}));

    let (status, body) = decode(h.get(&h.api("/projects/42/pipelines/x/y"), &[]).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"error": "404 Not Found"}));
}

#[tokio::test]
async fn url_encoded_project_path_addresses_the_project() {
    let h = Harness::start().await;
    let url = h.api(&format!("/projects/group%2Fapp/statuses/{SHA}"));
    let query = [
        ("state", "pending"),
        ("name", "jenkins/build"),
        ("ref", "feature/x"),
    ];

    let response = h
        .authed(Method::POST, &url)
        .query(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(h.gitlab.statuses(PROJECT, SHA)[0].name, "jenkins/build");
    assert_eq!(h.gitlab.status_posts()[0].project, "group/app");
}

#[tokio::test]
async fn pending_twice_is_refused_with_gitlabs_transition_error() {
    let h = Harness::start().await;
    let status = json!({"state": "pending", "name": "jenkins", "ref": "feature/x"});

    let (first, created) = h.post_status(status.clone()).await;
    assert_eq!(first, StatusCode::CREATED);
    assert_eq!(created["status"], "pending");
    assert_eq!(created["author"]["id"], 999);
    assert_eq!(created["allow_failure"], false);

    let (second, body) = h.post_status(status).await;
    assert_eq!(second, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({ "message": pending_twice_text() }));
    assert_eq!(h.gitlab.statuses(PROJECT, SHA).len(), 1);
}

#[tokio::test]
async fn running_twice_and_skip_after_running_are_refused() {
    let h = Harness::start().await;
    let running = |description: &str| {
        let mut body = json!({"state": "running", "name": "jenkins", "ref": "feature/x"});
        body["description"] = description.into();
        body
    };

    assert_eq!(h.post_status(running("first")).await.0, StatusCode::CREATED);
    let (code, body) = h.post_status(running("second")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let text = body["message"].as_str().unwrap();
    assert!(text.starts_with("Cannot transition status via :run from :running (Reason(s)"));
    let kept = h.gitlab.statuses(PROJECT, SHA)[0].description.clone();
    assert_eq!(kept.as_deref(), Some("first"));

    let skip = json!({"state": "skipped", "name": "jenkins", "ref": "feature/x"});
    let (code, body) = h.post_status(skip).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let text = body["message"].as_str().unwrap();
    assert!(text.starts_with("Cannot transition status via :skip from :running"));
}

#[tokio::test]
async fn running_after_success_creates_a_new_job_and_marks_the_old_retried() {
    let h = Harness::start().await;
    for state in ["pending", "running", "success", "running"] {
        let body = json!({"state": state, "name": "jenkins", "ref": "feature/x"});
        assert_eq!(
            h.post_status(body).await.0,
            StatusCode::CREATED,
            "posting {state}"
        );
    }

    let jobs = h.gitlab.statuses(PROJECT, SHA);
    assert_eq!(jobs.len(), 2);
    assert_eq!((jobs[0].state.as_str(), jobs[0].retried), ("success", true));
    assert_eq!(
        (jobs[1].state.as_str(), jobs[1].retried),
        ("running", false)
    );
    assert_eq!(jobs[0].pipeline_id, jobs[1].pipeline_id);

    let list = h.api(&format!(
        "/projects/{PROJECT}/repository/commits/{SHA}/statuses"
    ));
    let latest = h.get_json(&list, &[]).await;
    assert_eq!(latest.as_array().unwrap().len(), 1);
    assert_eq!(latest[0]["status"], "running");
    let all = h.get_json(&list, &[("all", "true")]).await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(all[0]["id"], jobs[1].id);
}

#[tokio::test]
async fn invalid_state_target_url_and_description_are_400_with_gitlabs_bodies() {
    let h = Harness::start().await;

    let (code, body) = h.post_status(json!({"state": "done"})).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"error": "state does not have a valid value"}));

    let ftp = json!({"state": "pending", "target_url": "ftp://ci/1"});
    let (code, body) = h.post_status(ftp).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let blocked = "is blocked: Only allowed schemes are http, https";
    assert_eq!(body, json!({"message": {"target_url": [blocked]}}));

    let long = json!({"state": "pending", "description": "x".repeat(256)});
    assert_eq!(h.post_status(long).await.0, StatusCode::BAD_REQUEST);
    assert!(h.gitlab.all_statuses().is_empty());
}

#[tokio::test]
async fn status_posts_log_every_attempt_with_its_answer() {
    let h = Harness::start().await;
    h.gitlab.fail_next(1, 409, None);
    let status = json!({"state": "pending", "context": "jenkins/sast", "ref": "feature/x"});

    let conflict = h.post_status(status.clone()).await.0;
    let created = h.post_status(status.clone()).await.0;
    let refused = h.post_status(status).await.0;

    assert_eq!(conflict, StatusCode::CONFLICT);
    assert_eq!(created, StatusCode::CREATED);
    assert_eq!(refused, StatusCode::BAD_REQUEST);
    let posts = h.gitlab.status_posts();
    let codes: Vec<u16> = posts.iter().map(|p| p.status).collect();
    assert_eq!(codes, [409, 201, 400]);
    let pending = Some("pending");
    assert!(posts
        .iter()
        .all(|p| p.name == "jenkins/sast" && p.state.as_deref() == pending));
    assert!(posts[2]
        .body
        .contains("Cannot transition status via :enqueue"));
}

#[tokio::test]
async fn fail_next_answers_the_status_with_retry_after_then_recovers() {
    let h = Harness::start().await;
    h.gitlab.fail_next(1, 429, Some(3));
    let url = h.api(&format!(
        "/projects/{PROJECT}/merge_requests/{MR}/approvals"
    ));

    let limited = h.get(&url, &[]).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "3");
    assert_eq!(h.get(&url, &[]).await.status(), StatusCode::OK);
    assert_eq!(h.gitlab.request_count(), 2);
}

#[tokio::test]
async fn notes_are_authored_by_the_bot_and_only_its_own_can_be_edited() {
    let h = Harness::start().await;

    let (created, note) = h
        .note(Method::POST, &h.notes(""), json!({"body": "Passed"}))
        .await;
    assert_eq!(created, StatusCode::CREATED);
    assert_eq!(note["author"]["id"], 999);
    assert_eq!(note["noteable_type"], "MergeRequest");
    let own = note["id"].as_u64().unwrap();

    let edit = json!({"body": "Failed"});
    let (edited, _) = h
        .note(Method::PUT, &h.notes(&format!("/{own}")), edit)
        .await;
    assert_eq!(edited, StatusCode::OK);
    assert_eq!(h.gitlab.notes(PROJECT, MR)[0].body, "Failed");

    let theirs = h.gitlab.add_note_as(PROJECT, MR, human(), "LGTM");
    let url = h.notes(&format!("/{theirs}"));
    let (forbidden, body) = h.note(Method::PUT, &url, json!({"body": "x"})).await;
    assert_eq!(forbidden, StatusCode::FORBIDDEN);
    assert_eq!(body, json!({"message": "403 Forbidden"}));
    let (deleted, _) = h.note(Method::DELETE, &url, json!({})).await;
    assert_eq!(deleted, StatusCode::FORBIDDEN);
    assert_eq!(h.gitlab.notes(PROJECT, MR)[1].body, "LGTM");

    let (missing, _) = h.note(Method::POST, &h.notes(""), json!({})).await;
    assert_eq!(missing, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn notes_list_newest_first_and_pages_with_next_page_header() {
    let h = Harness::start().await;
    for body in ["one", "two", "three"] {
        h.gitlab.add_note_as(PROJECT, MR, human(), body);
    }

    let first = h.get(&h.notes(""), &[("per_page", "2")]).await;
    assert_eq!(first.headers()["x-next-page"], "2");
    assert_eq!(first.headers()["x-total"], "3");
    let page: Value = first.json().await.unwrap();
    assert_eq!(
        (page[0]["body"].as_str(), page[1]["body"].as_str()),
        (Some("three"), Some("two"))
    );

    let last = h
        .get(&h.notes(""), &[("per_page", "2"), ("page", "2")])
        .await;
    assert_eq!(last.headers()["x-next-page"], "");
    let page: Value = last.json().await.unwrap();
    assert_eq!(page[0]["body"], "one");

    let query = [("sort", "asc"), ("order_by", "updated_at")];
    let ascending = h.get_json(&h.notes(""), &query).await;
    assert_eq!(ascending[0]["body"], "one");
}

#[tokio::test]
async fn quick_action_lines_in_bot_notes_are_recorded_as_executed() {
    let h = Harness::start().await;

    let safe = json!({"body": "Run `/merge` when green\n  /approve"});
    assert_eq!(
        h.note(Method::POST, &h.notes(""), safe).await.0,
        StatusCode::CREATED
    );
    assert!(h.gitlab.quick_actions().is_empty());

    let unsafe_note = json!({"body": "Summary\n/approve"});
    let (status, _) = h.note(Method::POST, &h.notes(""), unsafe_note).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(h.gitlab.quick_actions(), ["/approve"]);
    assert_eq!(h.gitlab.notes(PROJECT, MR)[1].body, "Summary");
}

#[tokio::test]
async fn unknown_merge_request_is_404_not_found() {
    let h = Harness::start().await;
    for path in [
        "/merge_requests/99/notes",
        "/merge_requests/99/approvals",
        "/merge_requests/99",
    ] {
        let url = h.api(&format!("/projects/{PROJECT}{path}"));
        let (status, body) = decode(h.get(&url, &[]).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body, json!({"message": "404 Not found"}));
    }
}

#[tokio::test]
async fn approvals_and_commits_reflect_what_the_test_set() {
    let h = Harness::start().await;
    h.gitlab
        .set_approvals(PROJECT, MR, vec![User::new(8, "bob", "Bob")]);
    let commit = (
        SHA.to_owned(),
        "alice@example.invalid".to_owned(),
        "Alice".to_owned(),
    );
    h.gitlab.set_mr_commits(PROJECT, MR, vec![commit]);
    let base = format!("/projects/{PROJECT}/merge_requests/{MR}");

    let approvals = h.get_json(&h.api(&format!("{base}/approvals")), &[]).await;
    assert_eq!(approvals["approved"], true);
    assert_eq!(approvals["approvals_left"], 0);
    assert_eq!(approvals["approved_by"][0]["user"]["username"], "bob");

    let commits = h.get_json(&h.api(&format!("{base}/commits")), &[]).await;
    assert_eq!(commits[0]["id"], SHA);
    assert_eq!(commits[0]["short_id"], &SHA[..8]);
    assert_eq!(commits[0]["author_email"], "alice@example.invalid");
}
