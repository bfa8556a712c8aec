//! Commit statuses of the quality checks, through the same machinery as build statuses:
//! each new verdict is a generation of its own (project, sha, name), posted in order by
//! the `post_status` job.

use sqlx::{Any, Transaction};

use crate::store::{
    statuses_tx::{advance, start_generation},
    StatusKey, StatusRow, StatusStage,
};

/// What the status shows now, as far as ci-bridge wants it: `pending`, a final state, or
/// nothing yet.
pub fn wanted_state(row: &StatusRow) -> Option<String> {
    match row.wanted_rank {
        1 => Some("pending".into()),
        2 => Some("running".into()),
        3 => row.final_state.as_ref().map(|f| f.0.clone()),
        _ => None,
    }
}

/// Starts generation `generation` of the status at `key` in `stage`, and queues its post.
pub async fn set(
    tx: &mut Transaction<'_, Any>,
    key: &StatusKey,
    git_ref: &str,
    generation: &str,
    stage: &StatusStage,
) -> sqlx::Result<()> {
    start_generation(tx, key, git_ref, generation).await?;
    advance(tx, key, generation, stage).await?;
    Ok(())
}
