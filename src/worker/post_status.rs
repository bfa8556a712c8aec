//! Bringing one commit status on GitLab up to date, one stage at a time.
//!
//! All posts for one (project, sha, name) go through this job, which the queue runs one at
//! a time per status, so they reach GitLab in order; a stage already posted is never posted
//! again, and a stage behind the posted one never at all.

use super::{JobError, Outcome, Services};
use crate::{
    gitlab::StatusPost,
    outbound::CallError,
    store::{ClaimedJob, StatusKey},
};

/// Stages posted in one run at the most (pending, running, final).
const MAX_STAGES_PER_RUN: usize = 3;

pub(super) async fn run(services: &Services, job: &ClaimedJob) -> Result<Outcome, JobError> {
    let key: StatusKey = serde_json::from_str(&job.payload)
        .map_err(|e| JobError::Invalid(format!("status payload: {e}")))?;
    let store = &services.store;
    for _ in 0..MAX_STAGES_PER_RUN {
        let Some(row) = store.status(&key).await? else {
            break;
        };
        let Some((rank, state, description, url)) = row.next_stage() else {
            break;
        };
        let post = StatusPost {
            state,
            git_ref: &row.git_ref,
            name: &key.name,
            target_url: url,
            description,
        };
        // A final state is the one post GitLab does not refuse when repeated (it would make a
        // second job). After a failed or interrupted attempt the first may have arrived.
        if rank == 3 && job.attempts > 1 {
            let gitlab = &services.gitlab;
            let current = gitlab
                .current_status(key.project_id, &key.sha, &key.name, &row.git_ref)
                .await?;
            if current.as_deref() == Some(state) {
                store.mark_posted(&key, &row.build_id, rank, None).await?;
                continue;
            }
        }
        let started = std::time::Instant::now();
        let answer = services
            .gitlab
            .post_status(key.project_id, &key.sha, &post)
            .await;
        services
            .metrics
            .outbound("gitlab", "status", answer.is_ok(), started.elapsed());
        match answer {
            Ok(posted) => {
                tracing::info!(
                    project_id = key.project_id, sha = %key.sha, name = %key.name, state, ?posted,
                    "commit status posted"
                );
                store.mark_posted(&key, &row.build_id, rank, None).await?;
            }
            Err(error) => {
                let text = error.to_string();
                store.record_status_error(&key, &text).await?;
                if let CallError::Permanent(..) = error {
                    tracing::error!(
                        project_id = key.project_id, sha = %key.sha, name = %key.name, state, %error,
                        "GitLab refused the commit status (the error says what to check)"
                    );
                }
                return Err(error.into());
            }
        }
    }
    store.complete(job).await?;
    Ok(Outcome::Done)
}
