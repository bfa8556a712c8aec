//! The parameters a triggered build gets: `CI_BRIDGE_BUILD_ID`, plus the variable names of
//! the Jenkins GitLab plugin, so Jenkinsfiles written for that plugin keep working.
//!
//! Jenkins reads only the parameters a job defines; the README lists the ones to define.

use std::collections::BTreeMap;

use crate::gitlab::events::{MergeRequestEvent, PushEvent};

/// The parameter that makes every trigger unique (Jenkins would otherwise merge two
/// triggers with equal parameters into one queue item) and ties a build to its record.
pub const BUILD_ID_PARAM: &str = "CI_BRIDGE_BUILD_ID";

pub type Params = BTreeMap<String, String>;

fn put(params: &mut Params, name: &str, value: Option<impl Into<String>>) {
    if let Some(value) = value {
        params.insert(name.to_owned(), value.into());
    }
}

/// Parameters for a push to `branch`.
pub fn for_push(build_id: &str, push: &PushEvent, branch: &str) -> Params {
    let mut params = Params::new();
    params.insert(BUILD_ID_PARAM.into(), build_id.into());
    params.insert("gitlabActionType".into(), "PUSH".into());
    params.insert("gitlabBranch".into(), branch.into());
    params.insert("gitlabSourceBranch".into(), branch.into());
    params.insert("gitlabTargetBranch".into(), branch.into());
    params.insert("gitlabBefore".into(), push.before.clone());
    params.insert("gitlabAfter".into(), push.after.clone());
    put(
        &mut params,
        "gitlabSourceRepoHttpUrl",
        push.project.git_http_url.clone(),
    );
    put(
        &mut params,
        "gitlabSourceRepoName",
        push.project.name.clone(),
    );
    put(
        &mut params,
        "gitlabSourceNamespace",
        push.project.namespace.clone(),
    );
    put(&mut params, "gitlabUserName", push.user_name.clone());
    put(
        &mut params,
        "gitlabUserUsername",
        push.user_username.clone(),
    );
    put(&mut params, "gitlabUserEmail", push.user_email.clone());
    params
}

/// Parameters for a merge request whose head is `sha`.
pub fn for_merge_request(build_id: &str, mr: &MergeRequestEvent, sha: &str) -> Params {
    let attrs = &mr.object_attributes;
    let source = attrs.source.as_ref();
    let mut params = Params::new();
    params.insert(BUILD_ID_PARAM.into(), build_id.into());
    params.insert("gitlabActionType".into(), "MERGE".into());
    params.insert("gitlabBranch".into(), attrs.source_branch.clone());
    params.insert("gitlabSourceBranch".into(), attrs.source_branch.clone());
    params.insert("gitlabTargetBranch".into(), attrs.target_branch.clone());
    params.insert("gitlabMergeRequestIid".into(), attrs.iid.to_string());
    put(
        &mut params,
        "gitlabMergeRequestId",
        attrs.id.map(|id| id.to_string()),
    );
    put(&mut params, "gitlabMergeRequestTitle", attrs.title.clone());
    params.insert("gitlabMergeRequestLastCommit".into(), sha.into());
    params.insert(
        "gitlabMergeRequestTargetProjectId".into(),
        attrs.target_project_id.to_string(),
    );
    put(&mut params, "gitlabBefore", attrs.oldrev.clone());
    params.insert("gitlabAfter".into(), sha.into());
    put(
        &mut params,
        "gitlabSourceRepoHttpUrl",
        source.and_then(|s| s.git_http_url.clone()),
    );
    put(
        &mut params,
        "gitlabSourceRepoName",
        source.and_then(|s| s.name.clone()),
    );
    put(
        &mut params,
        "gitlabSourceNamespace",
        source.and_then(|s| s.namespace.clone()),
    );
    put(&mut params, "gitlabUserName", mr.user.name.clone());
    put(&mut params, "gitlabUserUsername", mr.user.username.clone());
    put(&mut params, "gitlabUserEmail", mr.user.email.clone());
    params
}
