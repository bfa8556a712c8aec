//! The verdict of a scenario: waits (bounded) until ci-bridge is quiet, then holds every
//! accepted event against the database and the fakes' records. Nothing lost: each event is
//! stored, built once and ends in one final status. Nothing doubled: one build per
//! `CI_BRIDGE_BUILD_ID` and per commit, one status job per (project, sha, name). Nothing
//! backwards: the posts of one status only move forward.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write as _,
    time::{Duration, Instant},
};

use sqlx::{AnyPool, Row};

use crate::{
    load::Answer,
    proxy::Proxy,
    replica::{PROJECT_ID, STATUS_NAME},
    world::World,
};

/// What a scenario reports on its summary line.
#[derive(Debug, Default)]
pub struct Report {
    pub accepted: usize,
    pub builds_triggered: usize,
    pub final_statuses: usize,
    pub lost: usize,
    pub doubled: usize,
    pub backwards: usize,
    pub problems: Vec<String>,
}

/// The events that were answered 2xx, one per event id.
pub fn accepted(answers: &[Answer]) -> BTreeMap<String, String> {
    answers
        .iter()
        .filter(|a| a.is_2xx())
        .filter_map(|a| Some((a.event_id.clone()?, a.delivery.sha.clone())))
        .collect()
}

/// Waits until no job is left (dead letters aside), every sha has a final status, no call
/// is under way through `proxies`, and nothing changed for a moment. Returns whether that happened within `limit`.
pub async fn wait_quiet(
    world: &World,
    db: &AnyPool,
    shas: &BTreeSet<String>,
    proxies: &[&Proxy],
    limit: Duration,
) -> bool {
    let deadline = Instant::now() + limit;
    let mut last = None;
    while Instant::now() < deadline {
        let live: i64 = sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE dead = 0")
            .fetch_one(db)
            .await
            .and_then(|row| row.try_get("n"))
            .unwrap_or(-1);
        let finals = world
            .gitlab
            .all_statuses()
            .iter()
            .filter(|s| rank(&s.state) == 3 && shas.contains(&s.sha))
            .count();
        let activity = (
            world.gitlab.status_posts().len(),
            world.jenkins.request_count(),
        );
        let in_flight: usize = proxies.iter().map(|p| p.in_flight()).sum();
        if live == 0 && finals >= shas.len() && in_flight == 0 {
            if last == Some(activity) {
                return true;
            }
            last = Some(activity);
            tokio::time::sleep(Duration::from_millis(300)).await;
        } else {
            last = None;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    false
}

fn rank(state: &str) -> u8 {
    match state {
        "pending" => 1,
        "running" => 2,
        "success" | "failed" | "canceled" | "skipped" => 3,
        _ => 0,
    }
}

/// Holds `accepted` (event id → sha) against the database and the fakes; every status
/// must end in `expected` (`success`, or `canceled` for builds Jenkins aborted).
pub async fn check(
    world: &World,
    db: &AnyPool,
    accepted: &BTreeMap<String, String>,
    expected: &str,
) -> Report {
    let mut report = Report {
        accepted: accepted.len(),
        ..Report::default()
    };
    let stored: BTreeSet<String> = rows(db, "SELECT id FROM events")
        .await
        .iter()
        .map(|r| r.try_get("id").unwrap_or_default())
        .collect();
    let mut db_builds: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for row in rows(db, "SELECT id, event_id, state FROM builds").await {
        let event: String = row.try_get("event_id").unwrap_or_default();
        let id: String = row.try_get("id").unwrap_or_default();
        let state: String = row.try_get("state").unwrap_or_default();
        db_builds.entry(event).or_default().push((id, state));
    }
    for row in rows(db, "SELECT kind, dead, attempts, last_error FROM jobs").await {
        let kind: String = row.try_get("kind").unwrap_or_default();
        let dead: i64 = row.try_get("dead").unwrap_or_default();
        let error: Option<String> = row.try_get("last_error").unwrap_or_default();
        let what = if dead == 1 { "dead letter" } else { "job left" };
        report.problems.push(format!("{what}: {kind}: {error:?}"));
    }

    let param = |params: &BTreeMap<String, String>, name: &str| params.get(name).cloned();
    let mut triggers_by_id: BTreeMap<String, usize> = BTreeMap::new();
    for trigger in world.jenkins.triggers() {
        if matches!(trigger.status, 201 | 303) {
            let id = param(&trigger.params, "CI_BRIDGE_BUILD_ID").unwrap_or_default();
            *triggers_by_id.entry(id).or_default() += 1;
        }
    }
    let mut builds_by_sha: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for build in world.jenkins.builds() {
        let sha = param(&build.params, "gitlabAfter").unwrap_or_default();
        let id = param(&build.params, "CI_BRIDGE_BUILD_ID").unwrap_or_default();
        builds_by_sha.entry(sha).or_default().push(id);
    }
    let mut jobs_by_sha: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for status in world.gitlab.all_statuses() {
        if status.project_id == PROJECT_ID && status.name == STATUS_NAME {
            jobs_by_sha
                .entry(status.sha.clone())
                .or_default()
                .push(status.state);
        }
    }
    let mut posts_by_sha: BTreeMap<String, Vec<(u8, u16, String)>> = BTreeMap::new();
    for post in world.gitlab.status_posts() {
        let state = post.state.clone().unwrap_or_default();
        let entry = posts_by_sha
            .entry(post.sha.to_ascii_lowercase())
            .or_default();
        entry.push((rank(&state), post.status, post.body.clone()));
    }

    for (event, sha) in accepted {
        let mut lost = Vec::new();
        let mut doubled = Vec::new();
        if !stored.contains(event) {
            lost.push("not in the database".to_owned());
        }
        let builds = db_builds.get(event).cloned().unwrap_or_default();
        match builds.len() {
            0 => lost.push("no build planned".to_owned()),
            1 => {}
            n => doubled.push(format!("{n} builds planned")),
        }
        for (id, _) in &builds {
            let triggered = triggers_by_id.get(id).copied().unwrap_or(0);
            if triggered > 1 {
                doubled.push(format!("build {id} triggered {triggered} times"));
            }
        }
        let jenkins_builds = builds_by_sha.get(sha).map_or(0, Vec::len);
        report.builds_triggered += jenkins_builds;
        match jenkins_builds {
            0 => lost.push("no Jenkins build".to_owned()),
            1 => {}
            n => doubled.push(format!("{n} Jenkins builds")),
        }
        let jobs = jobs_by_sha.get(sha).cloned().unwrap_or_default();
        let finals: Vec<&String> = jobs.iter().filter(|s| rank(s) == 3).collect();
        report.final_statuses += finals.len();
        match finals.len() {
            0 => lost.push(format!("no final status (status jobs: {jobs:?})")),
            1 if jobs.len() == 1 => {}
            _ => doubled.push(format!("status jobs on GitLab: {jobs:?}")),
        }
        if finals.iter().any(|s| s.as_str() != expected) {
            lost.push(format!("ended {finals:?}, not {expected}: {builds:?}"));
        }
        let posts = posts_by_sha.get(sha).map_or(&[][..], Vec::as_slice);
        let (backwards, finals_taken) = moved_backwards(posts);
        if finals_taken > 1 {
            doubled.push(format!("GitLab took {finals_taken} final posts"));
        }
        if !backwards.is_empty() {
            report.backwards += 1;
            report
                .problems
                .push(format!("event {event} sha {sha}: {}", backwards.join("; ")));
        }
        if !lost.is_empty() {
            report.lost += 1;
            report
                .problems
                .push(format!("LOST event {event} sha {sha}: {}", lost.join("; ")));
        }
        if !doubled.is_empty() {
            report.doubled += 1;
            report.problems.push(format!(
                "DOUBLED event {event} sha {sha}: {}",
                doubled.join("; ")
            ));
        }
    }
    report
}

/// Posts (rank, HTTP status, body) of one status, in arrival order: every post behind one
/// GitLab already took, and how many final posts GitLab took.
fn moved_backwards(posts: &[(u8, u16, String)]) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut highest = 0;
    let mut finals_taken = 0;
    for (rank, status, body) in posts {
        if *rank < highest {
            problems.push(format!(
                "posted rank {rank} after rank {highest} (answered {status})"
            ));
        }
        let taken = (200..300).contains(status)
            || (*status == 400 && body.contains("Cannot transition status"));
        if taken {
            highest = highest.max(*rank);
        }
        if *rank == 3 && (200..300).contains(status) {
            finals_taken += 1;
        }
    }
    (problems, finals_taken)
}

async fn rows(db: &AnyPool, sql: &str) -> Vec<sqlx::any::AnyRow> {
    sqlx::query(sql)
        .fetch_all(db)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Prints the summary line (past the test harness' capture, so it shows for passing tests
/// too) and fails the test when something was lost, doubled or moved backwards.
pub fn conclude(scenario: &str, report: &Report, started: Instant, logs: &[&std::path::Path]) {
    let line = format!(
        "process/{scenario}: events accepted {}, builds triggered {}, final statuses {}, \
         lost {}, doubled {}, moved backwards {} ({:.1}s)\n",
        report.accepted,
        report.builds_triggered,
        report.final_statuses,
        report.lost,
        report.doubled,
        report.backwards,
        started.elapsed().as_secs_f64(),
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
    let summary = crate::replica::log_dir("").join("summary.txt");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(summary)
    {
        let _ = file.write_all(line.as_bytes());
    }
    if !report.problems.is_empty() {
        let shown: Vec<&String> = report.problems.iter().take(25).collect();
        let logs: Vec<String> = logs.iter().map(|p| p.display().to_string()).collect();
        panic!(
            "{scenario}: {} problem(s); logs: {}\n{}",
            report.problems.len(),
            logs.join(", "),
            shown
                .iter()
                .map(|p| format!("  {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
