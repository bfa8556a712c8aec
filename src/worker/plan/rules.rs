//! The trigger rules: which builds a GitLab event asks for, or why it asks for none.

use crate::{
    config::{branch_allowed, Config, JobConfig, ProjectConfig},
    gitlab::events::{
        has_ci_skip, EventKind, GitLabEvent, MergeRequestAttributes, MergeRequestEvent, NoteEvent,
        PushEvent,
    },
    jenkins::{job_path::expand_job, params},
    store::Lineage,
};

/// Text in every note ci-bridge writes; a comment carrying it is never a command.
pub const OWN_NOTE_MARKER: &str = "<!-- ci-bridge";

/// One build an event asks for.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub id: String,
    pub job_name: String,
    pub status_name: String,
    pub gitlab_project_id: i64,
    pub sha: String,
    pub git_ref: String,
    pub mr_iid: Option<i64>,
    pub target_branch: Option<String>,
    pub params: params::Params,
    /// Built even when this commit was built before (a comment command, a forcing label).
    pub forced: bool,
    pub lineage: Lineage,
}

/// What an event asks for.
#[derive(Debug, Default)]
pub struct Plan {
    pub builds: Vec<BuildRequest>,
    /// Builds of this merge request that are no longer wanted (it was closed or merged).
    pub cancel: Option<(Lineage, String)>,
    /// Why nothing builds.
    pub skip: Option<String>,
}

impl Plan {
    fn skip(reason: impl Into<String>) -> Self {
        Self {
            skip: Some(reason.into()),
            ..Self::default()
        }
    }
}

/// The project of the event and what it asks for; `Err` is a reason to do nothing.
pub fn decide<'c>(
    config: &'c Config,
    kind: &str,
    body: &[u8],
) -> Result<(&'c ProjectConfig, Plan), String> {
    let kind = EventKind::from_stored(kind);
    let event = GitLabEvent::parse(kind, body).map_err(|e| format!("payload: {e}"))?;
    let routing = crate::gitlab::events::routing(body).map_err(|e| e.to_string())?;
    let path = routing.project_path.ok_or("payload names no project")?;
    let project = config
        .project(&path)
        .ok_or_else(|| format!("project {path} is no longer configured"))?;
    let plan = match event {
        GitLabEvent::Push(push) => plan_push(project, &push, false),
        GitLabEvent::TagPush(push) => plan_push(project, &push, true),
        GitLabEvent::MergeRequest(mr) => plan_merge_request(project, &mr),
        GitLabEvent::Note(note) => plan_comment(config, project, &note),
        GitLabEvent::Pipeline(pipeline) => match pipeline.object_attributes.source.as_deref() {
            Some("external") => {
                Plan::skip("external pipeline (created by commit statuses such as ours)")
            }
            _ => Plan::skip("pipeline events do not build"),
        },
        GitLabEvent::Other => Plan::skip(format!("{} events do not build", kind.as_str())),
    };
    Ok((project, plan))
}

fn plan_push(project: &ProjectConfig, push: &PushEvent, tag: bool) -> Plan {
    let rules = &project.triggers;
    let name = if tag { push.tag() } else { push.branch() };
    let Some(name) = name else {
        return Plan::skip(format!("ref {} is not a branch", push.git_ref));
    };
    if tag && !rules.tag_push {
        return Plan::skip("tag pushes do not build (triggers.tag_push is off)");
    }
    if !tag && !rules.push {
        return Plan::skip("pushes do not build (triggers.push is off)");
    }
    if push.is_deletion() {
        return Plan::skip(format!(
            "{} {name} was deleted",
            if tag { "tag" } else { "branch" }
        ));
    }
    if !tag && !branch_allowed(name, &rules.branches, &rules.exclude_branches) {
        return Plan::skip(format!("branch filter: {name} does not build"));
    }
    if rules.ci_skip {
        let message = push
            .head_commit()
            .and_then(|c| c.message.as_deref())
            .unwrap_or("");
        if has_ci_skip(message) {
            return Plan::skip("ci skip: the head commit asks not to build");
        }
    }
    let Some(project_id) = push.project_id() else {
        return Plan::skip("payload has no project id");
    };
    let builds = project
        .all_jobs()
        .iter()
        .map(|job| {
            let id = new_build_id();
            let mut params = params::for_push(&id, push, name);
            if tag {
                params.insert("gitlabActionType".into(), "TAG_PUSH".into());
            }
            BuildRequest {
                job_name: expand_job(&job.job, name, None),
                status_name: job.status_name.clone(),
                gitlab_project_id: project_id as i64,
                sha: push.after.clone(),
                git_ref: name.to_owned(),
                mr_iid: None,
                target_branch: None,
                params,
                forced: false,
                lineage: Lineage::Branch(name.to_owned()),
                id,
            }
        })
        .collect();
    Plan {
        builds,
        ..Plan::default()
    }
}

fn plan_merge_request(project: &ProjectConfig, mr: &MergeRequestEvent) -> Plan {
    let rules = &project.triggers;
    let attrs = &mr.object_attributes;
    let lineage = Lineage::MergeRequest(attrs.iid as i64);
    match mr.action() {
        "close" => {
            return Plan {
                cancel: Some((lineage, "merge request closed".into())),
                skip: Some("merge request closed".into()),
                ..Plan::default()
            }
        }
        "merge" => {
            return Plan {
                cancel: Some((lineage, "merge request merged".into())),
                skip: Some("merge request merged".into()),
                ..Plan::default()
            }
        }
        _ => {}
    }
    if !rules.merge_request {
        return Plan::skip("merge requests do not build (triggers.merge_request is off)");
    }
    let forced_label = mr
        .labels_added()
        .into_iter()
        .find(|label| rules.force_build_labels.contains(label));
    let left_draft = mr.action() == "update" && mr.left_draft();
    let wanted = mr.brings_new_code() || forced_label.is_some() || (left_draft && !rules.drafts);
    if !wanted {
        return Plan::skip(match mr.action() {
            "update" => "merge request updated without new commits".to_owned(),
            "" => "merge request event without an action".to_owned(),
            action => format!("merge request action '{action}' does not build"),
        });
    }
    if mr.is_draft() && !rules.drafts && forced_label.is_none() {
        return Plan::skip("draft merge request (triggers.drafts is off)");
    }
    if let Some(reason) = filtered(project, attrs) {
        return Plan::skip(reason);
    }
    let forced = forced_label.is_some();
    Plan {
        builds: merge_request_builds(project, mr, &project.all_jobs(), forced, None),
        ..Plan::default()
    }
}

/// Why the branch filters or `[ci skip]` keep this merge request from building.
fn filtered(project: &ProjectConfig, attrs: &MergeRequestAttributes) -> Option<String> {
    let rules = &project.triggers;
    if !branch_allowed(
        &attrs.source_branch,
        &rules.source_branches,
        &rules.exclude_source_branches,
    ) {
        return Some(format!(
            "branch filter: source branch {} does not build",
            attrs.source_branch
        ));
    }
    if !branch_allowed(
        &attrs.target_branch,
        &rules.target_branches,
        &rules.exclude_target_branches,
    ) {
        return Some(format!(
            "branch filter: target branch {} does not build",
            attrs.target_branch
        ));
    }
    let message = attrs
        .last_commit
        .as_ref()
        .and_then(|c| c.message.as_deref())
        .unwrap_or("");
    if rules.ci_skip && has_ci_skip(message) {
        return Some("ci skip: the head commit asks not to build".into());
    }
    None
}

fn merge_request_builds(
    project: &ProjectConfig,
    mr: &MergeRequestEvent,
    jobs: &[JobConfig],
    forced: bool,
    phrase: Option<&str>,
) -> Vec<BuildRequest> {
    let attrs = &mr.object_attributes;
    let Some(sha) = attrs.last_commit.as_ref().map(|c| c.id.clone()) else {
        return Vec::new();
    };
    let _ = project;
    jobs.iter()
        .map(|job| {
            let id = new_build_id();
            let mut params = params::for_merge_request(&id, mr, &sha);
            if let Some(phrase) = phrase {
                params.insert("gitlabTriggerPhrase".into(), phrase.to_owned());
            }
            // Statuses go where GitLab's merge-request widget looks: the source project
            // and branch.
            BuildRequest {
                job_name: expand_job(&job.job, &attrs.source_branch, Some(attrs.iid as i64)),
                status_name: job.status_name.clone(),
                gitlab_project_id: attrs.source_project_id as i64,
                sha: sha.clone(),
                git_ref: attrs.source_branch.clone(),
                mr_iid: Some(attrs.iid as i64),
                target_branch: Some(attrs.target_branch.clone()),
                params,
                forced,
                lineage: Lineage::MergeRequest(attrs.iid as i64),
                id,
            }
        })
        .collect()
}

fn plan_comment(config: &Config, project: &ProjectConfig, note: &NoteEvent) -> Plan {
    let rules = &project.triggers;
    let attrs = &note.object_attributes;
    let text = attrs.note.as_deref().unwrap_or("").trim();
    if !rules.comment {
        return Plan::skip("comments do not build (triggers.comment is off)");
    }
    if attrs.noteable_type.as_deref() != Some("MergeRequest") {
        return Plan::skip("only comments on merge requests can be commands");
    }
    if attrs.action.as_deref().is_some_and(|a| a != "create") {
        return Plan::skip("an edited comment is not a command");
    }
    let author = note.user.username.as_deref().unwrap_or("");
    let own = config
        .gitlab
        .bot_username
        .as_deref()
        .is_some_and(|bot| bot == author);
    if own || text.contains(OWN_NOTE_MARKER) {
        return Plan::skip("ci-bridge's own note");
    }
    let Some(captures) = rules.comment_regex().captures(text) else {
        return Plan::skip("the comment is not a command (triggers.comment_command)");
    };
    if !rules.trusted_users.is_empty() && !rules.trusted_users.iter().any(|u| u == author) {
        return Plan::skip(format!(
            "comment command from {author}, who is not in triggers.trusted_users"
        ));
    }
    let Some(attributes) = note.merge_request.clone() else {
        return Plan::skip("comment payload has no merge request");
    };
    let mut jobs = project.all_jobs();
    if let Some(wanted) = captures.name("job").map(|m| m.as_str()) {
        jobs.retain(|job| job.status_name == wanted || job.job == wanted);
        if jobs.is_empty() {
            return Plan::skip(format!(
                "comment command names no job of this project: {wanted}"
            ));
        }
    }
    let mr = MergeRequestEvent {
        user: note.user.clone(),
        project: note.project.clone(),
        object_attributes: attributes,
        changes: None,
    };
    Plan {
        builds: merge_request_builds(project, &mr, &jobs, true, Some(text)),
        ..Plan::default()
    }
}

fn new_build_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
