//! One pass over a webhook body for the kinds that build (pushes, tag pushes, merge
//! requests): its routing fields and the checked event, read together.
//!
//! The webhook needs the project before verification (to pick its secrets) and the checked
//! event after; [`super::routing`] and [`GitLabEvent::parse`] read the body once each. Here a
//! mirror of the event type, with the routing fields beside it, reads it once. The answer
//! is only ever one the two-pass reading would give: whenever this pass cannot give it
//! (another kind, a large body, anything invalid), it returns `None` and the caller reads
//! the body the usual way, so every rejection and its order stay exactly as they were.
//!
//! The mirrors must accept no more than the types they mirror: their fields carry the same
//! serde attributes, and building the event names every field, so a field added to an
//! event type does not compile here until it is added to its mirror too.

use std::borrow::Cow;

use serde::Deserialize;

use super::{
    path_of_homepage, Commit, EnvelopeRepository, EventKind, GitLabEvent, MergeRequestAttributes,
    MergeRequestEvent, Project, PushEvent, Routing, User,
};

/// Largest body read in one pass before verification, in bytes. A typed parse allocates in
/// proportion to the body, which should not be offered to unverified senders without a
/// bound; GitLab's events are mostly a few kilobytes, and larger ones take the two passes.
pub const SINGLE_PASS_MAX_BODY: usize = 64 * 1024;

/// `PushEvent` with the routing fields.
#[derive(Deserialize)]
struct PushDelivery<'a> {
    #[serde(borrow)]
    object_kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    repository: Option<EnvelopeRepository<'a>>,
    #[serde(rename = "ref")]
    git_ref: String,
    before: String,
    after: String,
    checkout_sha: Option<String>,
    user_id: Option<u64>,
    user_name: Option<String>,
    user_username: Option<String>,
    user_email: Option<String>,
    project_id: Option<u64>,
    project: Project,
    #[serde(default)]
    commits: Vec<Commit>,
}

/// `MergeRequestEvent` with the routing fields.
#[derive(Deserialize)]
struct MergeRequestDelivery<'a> {
    #[serde(borrow)]
    object_kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    repository: Option<EnvelopeRepository<'a>>,
    #[serde(default)]
    user: User,
    project: Project,
    object_attributes: MergeRequestAttributes,
    #[serde(default)]
    changes: Option<serde_json::Value>,
}

/// The routing and the checked event of a body whose kind is known from its
/// `X-Gitlab-Event` header, in one pass; `None` when the two-pass reading is needed.
pub fn routed_event(kind: EventKind, body: &[u8]) -> Option<(Routing, GitLabEvent)> {
    if body.len() > SINGLE_PASS_MAX_BODY || !starts_as_object(body) {
        return None;
    }
    // `GitLabEvent::parse` refuses these before reading any JSON.
    if memchr::memmem::find(body, b"\\u0000").is_some() {
        return None;
    }
    match kind {
        EventKind::Push | EventKind::TagPush => {
            let d: PushDelivery<'_> = serde_json::from_slice(body).ok()?;
            let routed = routed(d.object_kind, &d.project, d.repository);
            let push = PushEvent {
                git_ref: d.git_ref,
                before: d.before,
                after: d.after,
                checkout_sha: d.checkout_sha,
                user_id: d.user_id,
                user_name: d.user_name,
                user_username: d.user_username,
                user_email: d.user_email,
                project_id: d.project_id,
                project: d.project,
                commits: d.commits,
            };
            Some((routed, GitLabEvent::checked_push(kind, push).ok()?))
        }
        EventKind::MergeRequest => {
            let d: MergeRequestDelivery<'_> = serde_json::from_slice(body).ok()?;
            let routed = routed(d.object_kind, &d.project, d.repository);
            let mr = MergeRequestEvent {
                user: d.user,
                project: d.project,
                object_attributes: d.object_attributes,
                changes: d.changes,
            };
            Some((routed, GitLabEvent::checked_merge_request(mr).ok()?))
        }
        _ => None,
    }
}

/// What [`super::routing`] reads from the same fields.
fn routed(
    object_kind: Option<Cow<'_, str>>,
    project: &Project,
    repository: Option<EnvelopeRepository<'_>>,
) -> Routing {
    let project_path = project
        .path_with_namespace
        .clone()
        .or_else(|| path_of_homepage(repository));
    Routing {
        project_path,
        object_kind: object_kind.map(Cow::into_owned),
    }
}

/// A struct also deserialises from a JSON array, by position; only an object is read the
/// same way by the mirror and by [`super::routing`]'s envelope.
fn starts_as_object(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitlab::events::routing;

    const MERGE_REQUEST: &[u8] = include_bytes!("../../../bench/merge_request.json");

    /// The one-pass answer, where there is one, is the two-pass answer.
    fn agrees(kind: EventKind, body: &[u8]) -> bool {
        let Some((routed, event)) = routed_event(kind, body) else {
            return false;
        };
        let two_pass = routing(body).expect("the two-pass routing accepts it too");
        assert_eq!(routed.project_path, two_pass.project_path);
        assert_eq!(routed.object_kind, two_pass.object_kind);
        let parsed = GitLabEvent::parse(kind, body).expect("the two-pass parse accepts it too");
        assert_eq!(format!("{event:?}"), format!("{parsed:?}"));
        true
    }

    #[test]
    fn a_merge_request_is_routed_and_checked_in_one_pass() {
        assert!(agrees(EventKind::MergeRequest, MERGE_REQUEST));
    }

    #[test]
    fn a_push_is_routed_and_checked_in_one_pass() {
        let body = serde_json::json!({
            "object_kind": "push",
            "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
            "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
            "ref": "refs/heads/main",
            "project_id": 7,
            "project": { "id": 7, "path_with_namespace": "analytics/collector" },
            "commits": []
        });
        assert!(agrees(EventKind::Push, body.to_string().as_bytes()));
    }

    #[test]
    fn a_project_without_a_path_is_routed_by_its_homepage() {
        let body = serde_json::json!({
            "object_kind": "push",
            "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
            "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
            "ref": "refs/heads/main",
            "project": { "id": 7 },
            "repository": { "homepage": "https://gitlab.example.com/analytics/collector" }
        });
        assert!(agrees(EventKind::Push, body.to_string().as_bytes()));
    }

    #[test]
    fn what_the_envelope_would_refuse_takes_the_two_passes() {
        let mut body: serde_json::Value = serde_json::from_slice(MERGE_REQUEST).unwrap();
        body["object_kind"] = serde_json::json!(5);
        let text = body.to_string();
        assert!(routing(text.as_bytes()).is_err());
        assert!(routed_event(EventKind::MergeRequest, text.as_bytes()).is_none());

        body["object_kind"] = serde_json::json!("merge_request");
        body["repository"] = serde_json::json!({ "homepage": 5 });
        assert!(routed_event(EventKind::MergeRequest, body.to_string().as_bytes()).is_none());
    }

    #[test]
    fn invalid_large_or_other_bodies_take_the_two_passes() {
        let kind = EventKind::MergeRequest;
        assert!(routed_event(kind, b"[1, 2]").is_none());
        assert!(routed_event(kind, b"{\"object_kind\": \"a\\u0000\"}").is_none());
        assert!(routed_event(EventKind::Note, MERGE_REQUEST).is_none());
        let mut large = MERGE_REQUEST.to_vec();
        large.truncate(large.len() - 1);
        large.extend(format!(", \"pad\": \"{}\"}}", "x".repeat(SINGLE_PASS_MAX_BODY)).bytes());
        assert!(GitLabEvent::parse(kind, &large).is_ok());
        assert!(routed_event(kind, &large).is_none());
    }
}
