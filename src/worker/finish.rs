//! The end of a build, whoever saw it first: the Jenkins callback or the tracker.

use crate::store::{
    builds_tx::{finished, number as record_number},
    statuses_tx::advance,
    Build, StatusKey, StatusStage, Store,
};

use super::describe;

/// What [`finish_build`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishOutcome {
    Recorded,
    /// The build had already ended; nothing changed.
    AlreadyFinished,
}

/// Records the result of `build` and moves its status to the end, in one transaction. A
/// build known to have run gets its `running` stage first, so GitLab shows pending,
/// running and the result in that order.
pub async fn finish_build(
    store: &Store,
    config: &crate::config::Config,
    build: &Build,
    result: &str,
    number: Option<i64>,
    duration_ms: Option<i64>,
) -> sqlx::Result<FinishOutcome> {
    let number = build.build_number.or(number);
    let duration_ms = duration_ms.or_else(|| {
        build
            .started_at
            .map(|started| crate::store::now_ms() - started)
    });
    let (state, description) = describe::result(result, number, duration_ms);
    let key = StatusKey::of(build);

    let mut tx = store.begin().await?;
    if !finished(&mut tx, &build.id, result, duration_ms, &description).await? {
        return Ok(FinishOutcome::AlreadyFinished);
    }
    if let Some(number) = number {
        record_number(&mut tx, &build.id, number).await?;
        let running = StatusStage::Running {
            description: format!("build #{number} running"),
            url: describe::build_link(config, &build.job_name, number),
        };
        advance(&mut tx, &key, &build.id, &running).await?;
    }
    let url = match number {
        Some(number) => describe::build_link(config, &build.job_name, number),
        None => describe::job_link(config, &build.job_name),
    };
    let stage = StatusStage::Final {
        state,
        description,
        url,
    };
    advance(&mut tx, &key, &build.id, &stage).await?;
    tx.commit().await?;
    store.wake_workers();
    Ok(FinishOutcome::Recorded)
}
