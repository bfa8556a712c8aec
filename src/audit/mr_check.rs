//! The `mr_check` job: re-reads a merge request's approvals (the approvals API) and
//! commits (the commits API), evaluates the four-eyes rule, moves the `four-eyes` status,
//! and queues the summary note.
//!
//! The status stays `pending` until an eligible approver approves, then turns `success`;
//! when that approval is withdrawn it starts a new generation back at `pending` (GitLab
//! creates a new job for it, as it does for any state after a terminal one).

use super::{evidence, four_eyes, mr_note_job, status};
use crate::{
    store::{now_ms, ClaimedJob, StatusKey, StatusStage, Store, UserRef},
    worker::{JobError, Outcome, Services},
};

#[derive(serde::Deserialize)]
pub(super) struct MrPayload {
    pub project_id: i64,
    pub iid: i64,
}

pub async fn run(services: &Services, job: &ClaimedJob) -> Result<Outcome, JobError> {
    let payload: MrPayload = serde_json::from_str(&job.payload)
        .map_err(|e| JobError::Invalid(format!("mr_check payload: {e}")))?;
    let store = &services.store;
    let Some(mr) = store.merge_request(payload.project_id, payload.iid).await? else {
        store.complete(job).await?;
        return Ok(Outcome::Done);
    };
    let Some(project) = services.config.project(&mr.project_path) else {
        store.complete(job).await?;
        return Ok(Outcome::Done);
    };
    let open = !matches!(mr.state.as_deref(), Some("merged" | "closed"));
    if open {
        evidence::sync_approvals(services, mr.project_id, mr.iid).await?;
    }
    let (people, _) = evidence::commit_people(
        services,
        mr.project_id,
        mr.iid,
        mr.commit_authors.as_deref(),
    )
    .await?;
    let author = UserRef {
        id: mr.author_id.unwrap_or_default(),
        username: mr.author_username.clone(),
        name: mr.author_name.clone(),
    };
    let approvers = evidence::active_approvers(store, mr.project_id, mr.iid).await?;
    let state = four_eyes::evaluate(&author, &people, &approvers);

    let mut tx = store.begin().await?;
    if let (true, Some(sha)) = (open && project.quality.merge_request_checks, &mr.head_sha) {
        let key = StatusKey {
            project_id: mr.source_project_id,
            sha: sha.clone(),
            name: project.quality.four_eyes_status.clone(),
        };
        let wanted = if state.satisfied {
            "success"
        } else {
            "pending"
        };
        let current = store.status(&key).await?;
        let unchanged = current
            .as_ref()
            .and_then(status::wanted_state)
            .is_some_and(|s| s == wanted);
        if !unchanged {
            let description = state.description();
            let url = mr_url(services, &mr.project_path, mr.iid);
            let stage = if state.satisfied {
                StatusStage::Final {
                    state: "success",
                    description,
                    url,
                }
            } else {
                StatusStage::Pending { description, url }
            };
            let generation = format!("four-eyes:{}:{}", wanted, now_ms());
            status::set(&mut tx, &key, &mr.source_branch, &generation, &stage).await?;
            tracing::info!(project = %mr.project_path, iid = mr.iid, %sha, wanted,
                "four-eyes status changed");
        }
    }
    if project.quality.merge_request_checks {
        crate::store::insert_jobs(&mut tx, &[&mr_note_job(mr.project_id, mr.iid)]).await?;
    }
    Store::complete_in(&mut tx, job).await?;
    tx.commit().await?;
    store.wake_workers();
    Ok(Outcome::Done)
}

/// The merge request's page, for the status link: GitLab's web URL of the project.
fn mr_url(services: &Services, project_path: &str, iid: i64) -> String {
    let mut url = services.config.gitlab.url.clone();
    let base = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{base}/{project_path}/-/merge_requests/{iid}"));
    url.to_string()
}
