use super::*;

fn push_body(after: &str, git_ref: &str) -> String {
    serde_json::json!({
        "object_kind": "push",
        "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
        "after": after,
        "ref": git_ref,
        "user_name": "Jane Doe",
        "user_username": "jdoe",
        "project_id": 7,
        "project": { "id": 7, "path_with_namespace": "analytics/collector" },
        "commits": []
    })
    .to_string()
}

#[test]
fn a_push_to_a_branch_names_the_branch_and_the_project() {
    let body = push_body(
        "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "refs/heads/feature/x",
    );
    let GitLabEvent::Push(push) = GitLabEvent::parse(EventKind::Push, body.as_bytes()).unwrap()
    else {
        panic!("not a push");
    };
    assert_eq!(push.branch(), Some("feature/x"));
    assert_eq!(push.project_id(), Some(7));
    assert!(!push.is_deletion());
    let routed = routing(body.as_bytes()).unwrap();
    assert_eq!(routed.project_path.as_deref(), Some("analytics/collector"));
}

#[test]
fn a_push_whose_after_is_not_a_sha_is_invalid() {
    let body = push_body("not-a-sha", "refs/heads/main");
    let err = GitLabEvent::parse(EventKind::Push, body.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("after"), "{err}");
}

fn merge_request(action: &str, oldrev: Option<&str>, with_commit: bool) -> serde_json::Value {
    let mut attrs = serde_json::json!({
        "iid": 3, "id": 99, "action": action,
        "source_branch": "feature", "target_branch": "main",
        "source_project_id": 14, "target_project_id": 7,
    });
    if let Some(oldrev) = oldrev {
        attrs["oldrev"] = oldrev.into();
    }
    if with_commit {
        attrs["last_commit"] =
            serde_json::json!({ "id": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7" });
    }
    serde_json::json!({
        "object_kind": "merge_request",
        "project": { "id": 7, "path_with_namespace": "analytics/collector" },
        "object_attributes": attrs,
    })
}

#[test]
fn only_open_reopen_and_updates_with_new_commits_bring_new_code() {
    let cases = [
        ("open", None, true),
        ("reopen", None, true),
        (
            "update",
            Some("95790bf891e76fee5e1747ab589903a6a1f80f22"),
            true,
        ),
        ("update", None, false),
        ("close", None, false),
        ("merge", None, false),
        ("approved", None, false),
    ];
    for (action, oldrev, expected) in cases {
        let body = merge_request(action, oldrev, true).to_string();
        let GitLabEvent::MergeRequest(mr) =
            GitLabEvent::parse(EventKind::MergeRequest, body.as_bytes()).unwrap()
        else {
            panic!("not a merge request");
        };
        assert_eq!(mr.brings_new_code(), expected, "{action} {oldrev:?}");
    }
}

#[test]
fn a_building_merge_request_without_last_commit_is_invalid() {
    let body = merge_request("open", None, false).to_string();
    let err = GitLabEvent::parse(EventKind::MergeRequest, body.as_bytes()).unwrap_err();
    assert_eq!(err, PayloadError::Missing("object_attributes.last_commit"));
    let closed = merge_request("close", None, false).to_string();
    assert!(GitLabEvent::parse(EventKind::MergeRequest, closed.as_bytes()).is_ok());
}

#[test]
fn job_hooks_without_a_project_object_route_by_repository_homepage() {
    let body = br#"{"object_kind":"build","repository":{"homepage":"https://gitlab.example.com/group/app"}}"#;
    assert_eq!(
        routing(body).unwrap().project_path.as_deref(),
        Some("group/app")
    );
}

#[test]
fn bodies_that_are_not_json_are_refused_by_routing() {
    assert!(matches!(
        routing(b"{not json"),
        Err(PayloadError::NotJson(_))
    ));
    // Valid JSON of the wrong shape is a payload error, not a syntax error.
    assert!(matches!(routing(b"[1,2]"), Err(PayloadError::Invalid(_))));
}

#[test]
fn system_hook_object_kinds_and_event_headers_map_to_the_same_kinds() {
    assert_eq!(
        EventKind::from_header("Merge Request Hook"),
        EventKind::MergeRequest
    );
    assert_eq!(
        EventKind::from_object_kind("merge_request"),
        EventKind::MergeRequest
    );
    assert_eq!(
        EventKind::from_stored(EventKind::Job.as_str()),
        EventKind::Job
    );
    assert_eq!(
        EventKind::from_header("Something New Hook"),
        EventKind::Other
    );
}
