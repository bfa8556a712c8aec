//! Outages (issue 4): with Jenkins and GitLab answering 503 to everything, webhooks keep
//! arriving and are accepted fast; when both return, the backlog drains, each event built
//! once and in the order the events arrived.

use std::time::{Duration, Instant};

use sqlx::Row;

use crate::{
    load::{deliver_all, pushes},
    single::{Single, EVENTS},
    world::exclusive,
};

/// How long both systems stay down.
const OUTAGE: Duration = Duration::from_secs(4);
/// Slowest acceptable answer to a webhook while they are down.
const FAST: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_accepted_fast_through_an_outage_and_the_backlog_drains_in_order() {
    let _one_at_a_time = exclusive().await;
    let run = Single::start("outage", "5s", 4).await;
    let (gitlab, jenkins) = (&run.world.gitlab, &run.world.jenkins);
    jenkins.fail_next(usize::MAX, 503);
    gitlab.fail_next(usize::MAX, 503, None);
    let down_since = Instant::now();

    let mut answers = Vec::new();
    for wave in pushes(run.name, EVENTS).chunks(10) {
        answers.extend(deliver_all(run.replica.url(), wave, 10).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let slowest = answers.iter().map(|a| a.latency).max().unwrap_or_default();
    let refused: Vec<_> = answers.iter().filter(|a| a.status != 202).collect();
    assert!(
        refused.is_empty(),
        "not accepted during the outage: {refused:?}"
    );
    assert!(
        slowest < FAST,
        "a webhook took {slowest:?} during the outage"
    );
    tokio::time::sleep(OUTAGE.saturating_sub(down_since.elapsed())).await;
    assert!(jenkins.builds().is_empty() && gitlab.all_statuses().is_empty());

    jenkins.fail_next(0, 503);
    gitlab.fail_next(0, 503, None);
    run.settle_and_check(&answers).await;

    /// Jobs this process runs at once (the config's `worker.concurrency`).
    const WORKERS: u64 = 4;
    /// Retries that may still have been in flight when Jenkins recovered.
    const STRAGGLERS: usize = 4;
    // Planned in event order (one project's events are processed one at a time); Jenkins
    // should number the builds in that order too.
    let planned: Vec<String> = sqlx::query("SELECT id FROM builds ORDER BY created_at, id")
        .fetch_all(&run.db)
        .await
        .expect("builds")
        .iter()
        .map(|row| row.try_get("id").expect("id"))
        .collect();
    let numbers: Vec<u64> = planned
        .iter()
        .filter_map(|id| {
            let builds = jenkins.builds();
            let build = builds
                .iter()
                .find(|b| b.params.get("CI_BRIDGE_BUILD_ID") == Some(id));
            build.map(|b| b.number)
        })
        .collect();
    // Workers trigger in parallel, so neighbours may swap; and a retry that was on its way
    // when Jenkins came back fails once more and waits its backoff. Everything else must
    // come in event order: within the worker count of its place.
    let misplaced: Vec<(usize, u64)> = numbers
        .iter()
        .enumerate()
        .filter(|(place, number)| {
            (**number as i64 - (*place as i64 + 1)).unsigned_abs() > 2 * WORKERS
        })
        .map(|(place, number)| (place, *number))
        .collect();
    assert!(
        misplaced.len() <= STRAGGLERS,
        "after the outage, Jenkins built the backlog out of event order: \
         {misplaced:?} are far from their place (build numbers in event order: {numbers:?})"
    );
}
