//! Crash safety on SQLite (issue 4): the release binary is killed with SIGKILL at each
//! point where work is half done, started again on the same file, and every accepted
//! event must still end in exactly one Jenkins build and one final commit status.

use std::time::Duration;

use crate::{
    proxy::{Hold, Rule},
    single::{Single, EVENTS},
    world::{exclusive, must},
};

/// Most a step that needs only the fakes and the local binary may take (seconds when
/// the machine is idle; generous for a loaded one).
const STEP: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_events_survive_a_kill_right_after_their_202s() {
    let _one_at_a_time = exclusive().await;
    let mut run = Single::start("kill_after_202", "5s", 4).await;

    let answers = run.send(EVENTS).await;
    run.replica.kill();
    run.replica.start().await;

    run.settle_and_check(&answers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_while_triggers_are_in_flight_builds_each_event_once() {
    let _one_at_a_time = exclusive().await;
    let mut run = Single::start("kill_during_triggers", "5s", 4).await;
    // Jenkins takes the triggers, but their answers never reach ci-bridge.
    run.jenkins.hold(Rule::jenkins_triggers(Hold::AfterForward));

    let answers = run.send(EVENTS).await;
    let jenkins = run.jenkins.clone();
    must("four triggers held after Jenkins took them", STEP, || {
        let jenkins = jenkins.clone();
        async move { jenkins.held() >= 4 }
    })
    .await;
    run.replica.kill();
    run.jenkins.release();
    run.replica.start().await;

    run.settle_and_check(&answers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_while_queue_items_and_builds_are_polled_finishes_each_build_once() {
    let _one_at_a_time = exclusive().await;
    let mut run = Single::start("kill_during_polling", "5s", 4).await;
    let jenkins = run.world.jenkins.clone();
    jenkins.hold_queue(true);

    let answers = run.send(EVENTS).await;
    let queued = |jenkins: ci_bridge_fakes::FakeJenkins| async move {
        jenkins
            .triggers()
            .iter()
            .filter(|t| t.status == 201)
            .count()
            >= EVENTS
    };
    must("every build queued in Jenkins", STEP, || {
        queued(jenkins.clone())
    })
    .await;
    // Killed while tracking queue items.
    run.replica.restart().await;

    jenkins.hold_builds(true);
    jenkins.hold_queue(false);
    let gitlab = run.world.gitlab.clone();
    must("every build running, and GitLab told so", STEP, || {
        let gitlab = gitlab.clone();
        async move {
            gitlab
                .all_statuses()
                .iter()
                .filter(|s| s.state == "running")
                .count()
                >= EVENTS
        }
    })
    .await;
    // Killed while polling running builds; they finish while ci-bridge is down.
    run.replica.kill();
    jenkins.hold_builds(false);
    run.replica.start().await;

    run.settle_and_check(&answers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_while_final_statuses_are_posted_ends_each_status_once() {
    let _one_at_a_time = exclusive().await;
    let mut run = Single::start("kill_during_status_posts", "5s", 4).await;
    // GitLab takes the final statuses, but its answers never reach ci-bridge.
    run.gitlab.hold(Rule::gitlab_status_posts(
        Some("success"),
        Hold::AfterForward,
    ));

    let answers = run.send(EVENTS).await;
    let gitlab = run.gitlab.clone();
    must("four final posts held after GitLab took them", STEP, || {
        let gitlab = gitlab.clone();
        async move { gitlab.held() >= 4 }
    })
    .await;
    run.replica.kill();
    run.gitlab.release();
    // And GitLab stumbles as ci-bridge comes back.
    run.world.gitlab.fail_next(6, 503, None);
    run.replica.start().await;

    run.settle_and_check(&answers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_items_jenkins_forgot_in_a_restart_are_found_by_their_build_id() {
    let _one_at_a_time = exclusive().await;
    let mut run = Single::start("jenkins_restart_while_down", "5s", 4).await;
    let jenkins = run.world.jenkins.clone();
    jenkins.hold_queue(true);

    let answers = run.send(EVENTS).await;
    let gitlab = run.world.gitlab.clone();
    must("every build pending on GitLab", STEP, || {
        let gitlab = gitlab.clone();
        async move {
            gitlab
                .all_statuses()
                .iter()
                .filter(|s| s.state == "pending")
                .count()
                >= EVENTS
        }
    })
    .await;
    // While ci-bridge is down its queue items start, then Jenkins restarts: it forgets the
    // left items and aborts the running builds.
    run.replica.kill();
    jenkins.hold_builds(true);
    jenkins.hold_queue(false);
    let started =
        |jenkins: ci_bridge_fakes::FakeJenkins| async move { jenkins.builds().len() >= EVENTS };
    must("every build started", STEP, || started(jenkins.clone())).await;
    jenkins.restart();
    jenkins.hold_builds(false);
    run.replica.start().await;

    run.settle_and_expect(&answers, "canceled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_slower_than_the_lease_is_not_sent_twice() {
    let _one_at_a_time = exclusive().await;
    // The shortest lease the configuration allows, and a Jenkins that needs longer to take
    // a trigger (well inside ci-bridge's 30 s request timeout).
    let run = Single::start("trigger_slower_than_lease", "5s", 2).await;
    run.jenkins
        .hold(Rule::jenkins_triggers(Hold::Delay(Duration::from_secs(7))));

    let answers = run.send(1).await;

    run.settle_and_check(&answers).await;
}
