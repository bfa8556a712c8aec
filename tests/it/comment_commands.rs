//! Comment commands on merge requests: `/retest` (optionally naming one job) rebuilds
//! the head; other notes, ci-bridge's own notes and untrusted users build nothing.

use crate::{
    four_eyes::status_becomes,
    payloads::{self, PROJECT_ID, SHA_A},
    support::{eventually, Options, JOB, JOB_PARAMS, PROJECT, WAIT},
    trigger_rules::{decisions, kinds, reason, spawn, with_rules},
};

#[tokio::test]
async fn a_retest_comment_rebuilds_the_merge_request_head() {
    let app = spawn(Options::default()).await;
    decisions(
        &app,
        "Merge Request Hook",
        &payloads::merge_request(PROJECT, "open", SHA_A, None),
    )
    .await;
    status_becomes(&app, SHA_A, "jenkins", "success").await;
    let retest = decisions(
        &app,
        "Note Hook",
        &payloads::mr_comment(PROJECT, SHA_A, "grace", "/retest"),
    )
    .await;
    assert_eq!(kinds(&retest), ["build"], "{retest:?}");
    eventually("a second build", WAIT, || async {
        (app.jenkins.builds().len() == 2).then_some(())
    })
    .await;
    let second = &app.jenkins.triggers()[1];
    assert_eq!(second.params["gitlabAfter"], SHA_A);
    assert_eq!(second.params["gitlabMergeRequestIid"], "5");
}

#[tokio::test]
async fn comments_that_are_not_commands_or_come_from_ci_bridge_or_untrusted_users_build_nothing() {
    let app = spawn(with_rules("trusted_users = [\"grace\"]", "")).await;
    let cases = [
        ("ada", "/retest", "not in triggers.trusted_users"),
        ("grace", "please /retest this", "not a command"),
        ("grace", "/retest\n<!-- ci-bridge:summary -->", "own note"),
    ];
    for (user, note, expected) in cases {
        let skipped = decisions(
            &app,
            "Note Hook",
            &payloads::mr_comment(PROJECT, SHA_A, user, note),
        )
        .await;
        assert!(reason(&skipped).contains(expected), "{note}: {skipped:?}");
    }
    assert!(app.jenkins.triggers().is_empty());
}

#[tokio::test]
async fn retest_with_a_job_name_rebuilds_only_that_job() {
    let jobs = "[[projects.jobs]]\njob = \"analytics/collector-sast\"\nstatus_name = \"sast\"\n";
    let options = Options {
        projects: Some(format!(
            "[[projects]]\ngitlab = \"{PROJECT}\"\njob = \"{JOB}\"\n{jobs}"
        )),
        ..Options::default()
    };
    let app = spawn(options).await;
    app.jenkins.add_job("analytics/collector-sast", JOB_PARAMS);
    let opened = decisions(
        &app,
        "Merge Request Hook",
        &payloads::merge_request(PROJECT, "open", SHA_A, None),
    )
    .await;
    assert_eq!(kinds(&opened), ["build", "build"], "each job its own build");
    let statuses = eventually("two results", WAIT, || async {
        let statuses = app.gitlab.statuses(PROJECT_ID, SHA_A);
        let built = statuses
            .iter()
            .filter(|s| s.name != "four-eyes" && s.state == "success");
        (built.count() == 2).then_some(statuses)
    })
    .await;
    let mut names: Vec<_> = statuses
        .iter()
        .map(|s| s.name.clone())
        .filter(|name| name != "four-eyes")
        .collect();
    names.sort();
    assert_eq!(names, ["jenkins", "sast"]);

    let retest = decisions(
        &app,
        "Note Hook",
        &payloads::mr_comment(PROJECT, SHA_A, "grace", "/retest sast"),
    )
    .await;
    assert_eq!(kinds(&retest), ["build"]);
    assert_eq!(retest[0]["status_name"], "sast");
}
