//! Webhook bodies written for these tests after GitLab's documented schema
//! (docs: user/project/integrations/webhook_events). Real captures are exercised
//! separately by the conformance test.

use serde_json::{json, Value};

pub const PROJECT_ID: u64 = 42;
/// A fork: merge requests from it carry this `source_project_id`.
pub const FORK_ID: u64 = 43;
pub const SHA_A: &str = "1111111111111111111111111111111111111111";
pub const SHA_B: &str = "2222222222222222222222222222222222222222";
pub const SHA_C: &str = "3333333333333333333333333333333333333333";
pub const ZERO: &str = "0000000000000000000000000000000000000000";

fn project(id: u64, path: &str) -> Value {
    json!({
        "id": id,
        "name": path.rsplit('/').next().unwrap_or(path),
        "namespace": path.split('/').next().unwrap_or(path),
        "path_with_namespace": path,
        "web_url": format!("https://gitlab.example.com/{path}"),
        "git_http_url": format!("https://gitlab.example.com/{path}.git"),
        "git_ssh_url": format!("git@gitlab.example.com:{path}.git"),
        "default_branch": "main",
        "visibility_level": 0
    })
}

pub fn push(path: &str, branch: &str, before: &str, after: &str) -> String {
    json!({
        "object_kind": "push",
        "event_name": "push",
        "before": before,
        "after": after,
        "ref": format!("refs/heads/{branch}"),
        "ref_protected": branch == "main",
        "checkout_sha": if after == ZERO { Value::Null } else { after.into() },
        "user_id": 7,
        "user_name": "Ada Lovelace",
        "user_username": "ada",
        "user_email": "ada@example.com",
        "project_id": PROJECT_ID,
        "project": project(PROJECT_ID, path),
        "commits": if after == ZERO { json!([]) } else { json!([{
            "id": after,
            "message": "Add the collector\n",
            "title": "Add the collector",
            "timestamp": "2026-11-30T10:00:00+00:00",
            "author": { "name": "Ada Lovelace", "email": "ada@example.com" },
            "added": ["src/collector.rs"], "modified": [], "removed": []
        }]) },
        "total_commits_count": if after == ZERO { 0 } else { 1 },
        "repository": { "name": "collector", "homepage": format!("https://gitlab.example.com/{path}") }
    })
    .to_string()
}

/// A merge request event; `oldrev` is set for updates that pushed new commits.
pub fn merge_request(path: &str, action: &str, sha: &str, oldrev: Option<&str>) -> String {
    merge_request_from(
        path,
        PROJECT_ID,
        action,
        sha,
        oldrev,
        "feature/login",
        "main",
        5,
    )
}

#[allow(clippy::too_many_arguments)]
pub fn merge_request_from(
    path: &str,
    source_project_id: u64,
    action: &str,
    sha: &str,
    oldrev: Option<&str>,
    source_branch: &str,
    target_branch: &str,
    iid: u64,
) -> String {
    let mut attributes = json!({
        "id": 9000 + iid,
        "iid": iid,
        "title": "Log in with SSO",
        "description": "Adds single sign-on.",
        "state": "opened",
        "action": action,
        "source_branch": source_branch,
        "target_branch": target_branch,
        "source_project_id": source_project_id,
        "target_project_id": PROJECT_ID,
        "author_id": 7,
        "draft": false,
        "work_in_progress": false,
        "merge_status": "can_be_merged",
        "detailed_merge_status": "mergeable",
        "url": format!("https://gitlab.example.com/{path}/-/merge_requests/{iid}"),
        "source": project(source_project_id, if source_project_id == PROJECT_ID { path } else { "ada/collector" }),
        "target": project(PROJECT_ID, path),
        "last_commit": {
            "id": sha,
            "message": "Log in with SSO\n",
            "title": "Log in with SSO",
            "timestamp": "2026-11-30T10:00:00+00:00",
            "author": { "name": "Ada Lovelace", "email": "ada@example.com" }
        }
    });
    if let Some(oldrev) = oldrev {
        attributes["oldrev"] = oldrev.into();
    }
    json!({
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": { "id": 7, "name": "Ada Lovelace", "username": "ada", "email": "ada@example.com" },
        "project": project(PROJECT_ID, path),
        "object_attributes": attributes,
        "labels": [],
        "changes": {},
        "repository": { "name": "collector", "homepage": format!("https://gitlab.example.com/{path}") }
    })
    .to_string()
}

/// A merge-request `update` without new commits, with the given `changes` object.
pub fn merge_request_changed(path: &str, sha: &str, draft: bool, changes: Value) -> String {
    let mut body: Value = serde_json::from_str(&merge_request(path, "update", sha, None)).unwrap();
    body["object_attributes"]["draft"] = draft.into();
    body["object_attributes"]["work_in_progress"] = draft.into();
    body["changes"] = changes;
    body.to_string()
}

/// A push whose head commit has the given message.
pub fn push_with_message(path: &str, branch: &str, after: &str, message: &str) -> String {
    let mut body: Value = serde_json::from_str(&push(path, branch, SHA_B, after)).unwrap();
    body["commits"][0]["message"] = message.into();
    body.to_string()
}

/// A comment on merge request 5 (head `sha`) by `username`.
pub fn mr_comment(path: &str, sha: &str, username: &str, note: &str) -> String {
    let mr: Value = serde_json::from_str(&merge_request(path, "open", sha, None)).unwrap();
    let mut attributes = mr["object_attributes"].clone();
    attributes.as_object_mut().unwrap().remove("action");
    json!({
        "object_kind": "note",
        "event_type": "note",
        "user": { "id": 8, "name": username, "username": username, "email": format!("{username}@example.com") },
        "project_id": PROJECT_ID,
        "project": project(PROJECT_ID, path),
        "object_attributes": {
            "id": 1244, "note": note, "noteable_type": "MergeRequest", "action": "create",
            "noteable_id": 9005, "system": false,
            "url": format!("https://gitlab.example.com/{path}/-/merge_requests/5#note_1244")
        },
        "merge_request": attributes,
        "repository": { "name": "collector", "homepage": format!("https://gitlab.example.com/{path}") }
    })
    .to_string()
}

/// A pipeline event with the given `source` (`external` for the ones commit statuses create).
pub fn pipeline(path: &str, sha: &str, source: &str) -> String {
    json!({
        "object_kind": "pipeline",
        "object_attributes": {
            "id": 31, "iid": 3, "ref": "main", "tag": false, "sha": sha, "source": source,
            "status": "success", "stages": ["external"], "created_at": "2026-11-30 10:00:00 UTC"
        },
        "user": { "id": 7, "name": "Ada Lovelace", "username": "ada" },
        "project": project(PROJECT_ID, path),
        "builds": []
    })
    .to_string()
}
