//! The load: a GitLab `Merge Request Hook` of about 5 KB, written after GitLab's documented
//! schema (`bench/merge_request.json`), and the headers GitLab sends with it.

/// The body every load run sends, byte for byte (`wrk` reads the same file).
pub const MERGE_REQUEST: &str = include_str!("../merge_request.json");

/// The project the payload names (`project.path_with_namespace`).
pub const PROJECT_PATH: &str = "acme/webshop";

/// Its GitLab project id (`project.id`, `source_project_id`).
pub const PROJECT_ID: u64 = 4711;

/// The merge request iid and head commit the file carries, replaced per event below.
const FILE_IID: &str = "\"iid\":342,";
const FILE_SHA: &str = "9f3c2a7e5b1d4c8f0a6e2b9d7c5a3f1e8b4d6c20";

/// The payload for merge request `iid` of project `id` at `path`, with a head commit
/// derived from `iid`, so every event plans its own build on its own commit.
pub fn merge_request(id: u64, path: &str, iid: u64) -> String {
    MERGE_REQUEST
        .replacen(FILE_IID, &format!("\"iid\":{iid},"), 1)
        .replace(FILE_SHA, &format!("{iid:040x}"))
        .replace(PROJECT_PATH, path)
        .replace(&format!(":{PROJECT_ID}"), &format!(":{id}"))
}

/// The delivery headers GitLab 17 sends, minus the credential; `key` is the
/// `Idempotency-Key` (and `webhook-id`).
pub fn gitlab_headers(key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".into()),
        ("x-gitlab-event", "Merge Request Hook".into()),
        ("user-agent", "GitLab/17.6.1".into()),
        ("x-gitlab-instance", "https://gitlab.example.com".into()),
        ("x-gitlab-webhook-uuid", key.into()),
        ("x-gitlab-event-uuid", key.into()),
        ("idempotency-key", key.into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_change_iid_commit_and_project_and_stay_json() {
        let body = merge_request(99, "acme/other", 7);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["object_attributes"]["iid"], 7);
        assert_eq!(
            json["object_attributes"]["last_commit"]["id"],
            format!("{:040x}", 7)
        );
        assert_eq!(json["project"]["path_with_namespace"], "acme/other");
        assert_eq!(json["project"]["id"], 99);
        assert_eq!(json["object_attributes"]["source_project_id"], 99);
        assert_eq!(json["object_attributes"]["action"], "update");
    }
}
