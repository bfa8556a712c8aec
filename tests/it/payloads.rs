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
