//! The JSON entities the fake GitLab answers with, shaped like `API::Entities`.

use serde_json::{json, Value};

use super::records::User;
use super::state::{MergeRequest, State, StatusJob, StoredNote};

/// The web host the entities' `web_url` fields point at; never contacted.
pub(crate) const WEB_URL: &str = "https://gitlab.example.invalid";

/// `Entities::UserBasic`.
pub(crate) fn user(u: &User) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "name": u.name,
        "state": "active",
        "locked": false,
        "avatar_url": null,
        "web_url": format!("{WEB_URL}/{}", u.username),
    })
}

/// `Entities::CommitStatus`.
pub(crate) fn commit_status(st: &State, job: &StatusJob) -> Value {
    let s = &job.status;
    let time = |t: Option<std::time::Instant>| t.map(|t| st.clock.rfc3339(t));
    json!({
        "id": s.id,
        "sha": s.sha,
        "ref": s.ref_,
        "status": s.state,
        "name": s.name,
        "target_url": s.target_url,
        "description": s.description,
        "created_at": st.clock.rfc3339(job.created),
        "started_at": time(job.started),
        "finished_at": time(job.finished),
        "allow_failure": false,
        "coverage": s.coverage,
        "pipeline_id": s.pipeline_id,
        "author": user(&st.bot),
    })
}

/// `Entities::Note` for a merge request note.
pub(crate) fn note(st: &State, n: &StoredNote) -> Value {
    let mr_id = st.mrs.get(&(n.project_id, n.mr_iid)).map_or(0, |mr| mr.id);
    json!({
        "id": n.id,
        "type": null,
        "body": n.body,
        "attachment": null,
        "author": user(&n.author),
        "created_at": st.clock.rfc3339(n.created),
        "updated_at": st.clock.rfc3339(n.updated),
        "system": n.system,
        "noteable_id": mr_id,
        "noteable_type": "MergeRequest",
        "project_id": n.project_id,
        "resolvable": false,
        "confidential": false,
        "internal": false,
        "noteable_iid": n.mr_iid,
        "commands_changes": {},
    })
}

/// `Entities::MergeRequest`, the fields ci-bridge may read.
pub(crate) fn merge_request(st: &State, mr: &MergeRequest) -> Value {
    let project_path = st
        .projects
        .get(&mr.project_id)
        .map_or("", |p| p.path.as_str());
    let created = st.clock.rfc3339(mr.created);
    json!({
        "id": mr.id,
        "iid": mr.iid,
        "project_id": mr.project_id,
        "title": format!("Merge request !{}", mr.iid),
        "description": "",
        "state": "opened",
        "created_at": created,
        "updated_at": created,
        "author": user(&mr.author),
        "source_branch": mr.source_branch,
        "target_branch": mr.target_branch,
        "source_project_id": mr.project_id,
        "target_project_id": mr.project_id,
        "draft": false,
        "work_in_progress": false,
        "merge_status": "can_be_merged",
        "detailed_merge_status": "mergeable",
        "sha": mr.sha,
        "merged_by": null,
        "web_url": format!("{WEB_URL}/{project_path}/-/merge_requests/{}", mr.iid),
    })
}

/// The approvals document; `approved_by[].user` is what both CE and EE expose.
pub(crate) fn approvals(st: &State, mr: &MergeRequest) -> Value {
    let approved_by: Vec<Value> = mr
        .approved_by
        .iter()
        .map(|u| json!({ "user": user(u) }))
        .collect();
    let count = u64::try_from(mr.approved_by.len()).unwrap_or(u64::MAX);
    let left = mr.approvals_required.saturating_sub(count);
    let mut doc = merge_request(st, mr);
    let fields = doc.as_object_mut().expect("object literal");
    // EE semantics: approved once no approvals are left.
    fields.insert("approved".into(), (left == 0).into());
    fields.insert("approvals_required".into(), mr.approvals_required.into());
    fields.insert("approvals_left".into(), left.into());
    fields.insert("approved_by".into(), approved_by.into());
    fields.insert(
        "user_has_approved".into(),
        mr.approved_by.iter().any(|u| u.id == st.bot.id).into(),
    );
    fields.insert("user_can_approve".into(), false.into());
    fields.insert("suggested_approvers".into(), json!([]));
    fields.insert("approvers".into(), json!([]));
    fields.insert("approver_groups".into(), json!([]));
    doc
}

/// `Entities::Commit` for each commit of a merge request.
pub(crate) fn commits(st: &State, mr: &MergeRequest) -> Value {
    let created = st.clock.rfc3339(mr.created);
    let project_path = st
        .projects
        .get(&mr.project_id)
        .map_or("", |p| p.path.as_str());
    let list: Vec<Value> = mr
        .commits
        .iter()
        .map(|(sha, email, name)| {
            let short: String = sha.chars().take(8).collect();
            json!({
                "id": sha,
                "short_id": short,
                "title": format!("Commit {short}"),
                "message": format!("Commit {short}\n"),
                "author_name": name,
                "author_email": email,
                "authored_date": created,
                "committer_name": name,
                "committer_email": email,
                "committed_date": created,
                "created_at": created,
                "parent_ids": [],
                "web_url": format!("{WEB_URL}/{project_path}/-/commit/{sha}"),
            })
        })
        .collect();
    Value::Array(list)
}
