//! `bench-trigger-latency`: how long a webhook takes to become a Jenkins trigger.
//!
//! Starts the Jenkins and GitLab fakes in-process, a timestamping proxy in front of
//! Jenkins, and the ci-bridge release binary as a child configured against them. Then:
//! start-up until `/readyz` answers; webhook → trigger latency on an idle queue; a backlog
//! of events on one project (a monorepo burst) with its per-event latency and the time to
//! drain it, while probes on a second project show what the burst costs everyone else;
//! resident memory idle and under that load; and start-up again on the filled database.
//!
//! Usage: `bench-trigger-latency CI_BRIDGE_BINARY WORKDIR BACKLOG PROBES DRAIN_SECS`;
//! prints `key=value` lines. A burst not drained after DRAIN_SECS is reported as such.

mod child;
mod proxy;

use std::{
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use bytes::Bytes;
use ci_bridge_bench::{
    client::Conn,
    payload::{self, gitlab_headers},
};
use ci_bridge_fakes::{FakeGitLab, FakeJenkins, GitLabOptions, JenkinsOptions};
use proxy::Arrivals;

/// The burst's project (the payload's own) and a second one for probes during it.
const BURST: (u64, &str, &str) = (payload::PROJECT_ID, payload::PROJECT_PATH, "webshop/mr");
const OTHER: (u64, &str, &str) = (4712, "acme/storefront", "storefront/mr");

/// Parameters the Jenkins jobs define: ci-bridge's build id and what the proxy keys on.
const JOB_PARAMS: &[&str] = &["CI_BRIDGE_BUILD_ID", "gitlabMergeRequestIid", "gitlabAfter"];

/// First merge request iid of the idle probes and of the probes during the burst; the
/// burst's own events use 1..=BACKLOG.
const IDLE_IID: u64 = 10_000_000;
const OTHER_IID: u64 = 20_000_000;

/// Connections that post the burst, and the pause between probes during it.
const BURST_CONNECTIONS: u64 = 32;
const PROBE_EVERY: Duration = Duration::from_millis(200);
/// Pause between idle probes, so each finds the queue empty, and the longest wait for one
/// probe's trigger.
const IDLE_GAP: Duration = Duration::from_millis(100);
const TRIGGER_TIMEOUT: Duration = Duration::from_secs(10);

const WEBHOOK_TOKEN: &str = "bench-hook-token";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() == 5,
        "usage: bench-trigger-latency CI_BRIDGE_BINARY WORKDIR BACKLOG PROBES DRAIN_SECS"
    );
    let (binary, workdir) = (PathBuf::from(&args[0]), PathBuf::from(&args[1]));
    let (backlog, probes): (u64, u64) = (args[2].parse()?, args[3].parse()?);
    let drain_timeout = Duration::from_secs(args[4].parse()?);
    std::fs::create_dir_all(&workdir)?;

    let jenkins_options = JenkinsOptions::default();
    let (user, token) = (
        jenkins_options.user.clone(),
        jenkins_options.api_token.clone(),
    );
    let jenkins = FakeJenkins::start(jenkins_options).await;
    let gitlab_options = GitLabOptions::default();
    let gitlab_token = gitlab_options.token.clone();
    let gitlab = FakeGitLab::start(gitlab_options).await;
    for (id, path, job) in [BURST, OTHER] {
        jenkins.add_job(job, JOB_PARAMS);
        gitlab.add_project(id, path);
    }
    let arrivals = Arrivals::default();
    let upstream: SocketAddr = jenkins.base_url().trim_start_matches("http://").parse()?;
    let proxy = proxy::start(upstream, arrivals.clone()).await?;

    let listen = free_port()?;
    let config = workdir.join("ci-bridge.toml");
    let database = workdir.join("trigger.db");
    let _ = std::fs::remove_file(&database);
    child::write_config(
        &config,
        &child::Setup {
            listen,
            database: &database,
            gitlab_url: &gitlab.base_url(),
            gitlab_token: &gitlab_token,
            jenkins_url: &format!("http://{proxy}"),
            jenkins_user: &user,
            jenkins_token: &token,
            webhook_token: WEBHOOK_TOKEN,
            projects: &[(BURST.1, BURST.2), (OTHER.1, OTHER.2)],
        },
    )?;
    let log = workdir.join("ci-bridge.log");
    let (bridge, ready) = child::Bridge::start(&binary, &config, listen, &log).await?;
    println!("ready_ms={:.1}", ms(ready));

    let mut idle = Vec::new();
    let mut conn = Conn::open(bridge.addr()).await?;
    for probe in 0..probes {
        let iid = IDLE_IID + probe;
        let sent = Instant::now();
        post(&mut conn, BURST, iid).await?;
        if let Some(at) = arrivals.wait_for(iid, sent + TRIGGER_TIMEOUT).await {
            idle.push(at - sent);
        }
        tokio::time::sleep(IDLE_GAP).await;
    }
    let (rss_idle, _) = bridge.memory_kib();
    println!("idle_probes={probes}\nidle_triggered={}", idle.len());
    print_percentiles("idle", &mut idle);
    println!("rss_idle_kib={rss_idle}");

    let burst = burst(&bridge, &arrivals, backlog, drain_timeout).await?;
    println!(
        "backlog_events={backlog}\nbacklog_triggered={}",
        burst.triggered
    );
    println!("backlog_post_s={:.2}", burst.posted.as_secs_f64());
    println!("drain_s={:.2}", burst.drained.as_secs_f64());
    println!("drain_complete={}", burst.triggered as u64 == backlog);
    let rate = burst.triggered as f64 / burst.drained.as_secs_f64();
    println!("drain_rate_per_s={rate:.1}");
    let mut own = burst.own;
    print_percentiles("backlog", &mut own);
    let mut others = burst.others;
    print_percentiles("backlog_other_project", &mut others);
    let (_, rss_peak) = bridge.memory_kib();
    println!("rss_backlog_peak_kib={}", burst.rss_max.max(rss_peak));
    println!("jenkins_builds={}", jenkins.builds().len());

    bridge.stop().await?;
    let (bridge, ready_again) = child::Bridge::start(&binary, &config, listen, &log).await?;
    println!("ready_restart_ms={:.1}", ms(ready_again));
    bridge.stop().await?;
    Ok(())
}

/// What the burst showed.
struct Burst {
    triggered: usize,
    posted: Duration,
    drained: Duration,
    own: Vec<Duration>,
    others: Vec<Duration>,
    rss_max: u64,
}

/// Posts `backlog` events on one project as fast as ci-bridge takes them, probes another
/// project meanwhile, and waits until every burst event has triggered its build.
async fn burst(
    bridge: &child::Bridge,
    arrivals: &Arrivals,
    backlog: u64,
    drain_timeout: Duration,
) -> anyhow::Result<Burst> {
    let started = Instant::now();
    let mut senders = Vec::new();
    for lane in 0..BURST_CONNECTIONS {
        let mut conn = Conn::open(bridge.addr()).await?;
        senders.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            let mut iid = 1 + lane;
            while iid <= backlog {
                sent.push((iid, Instant::now()));
                post(&mut conn, BURST, iid).await?;
                iid += BURST_CONNECTIONS;
            }
            anyhow::Ok(sent)
        }));
    }

    let mut probe_conn = Conn::open(bridge.addr()).await?;
    let mut probes = Vec::new();
    let mut rss_max = 0;
    let mut posted = None;
    let deadline = started + drain_timeout;
    while arrivals.count_in(1..=backlog) < backlog as usize && Instant::now() < deadline {
        if posted.is_none() && senders.iter().all(|s| s.is_finished()) {
            posted = Some(started.elapsed());
        }
        let iid = OTHER_IID + probes.len() as u64;
        probes.push((iid, Instant::now()));
        post(&mut probe_conn, OTHER, iid).await?;
        rss_max = rss_max.max(bridge.memory_kib().0);
        tokio::time::sleep(PROBE_EVERY).await;
    }
    let mut sent = Vec::new();
    for sender in senders {
        sent.extend(sender.await??);
    }
    let latencies = |list: &[(u64, Instant)]| -> Vec<Duration> {
        let arrived = list
            .iter()
            .filter_map(|(iid, at)| Some(arrivals.get(*iid)? - *at));
        arrived.collect()
    };
    let own = latencies(&sent);
    let last = (1..=backlog).filter_map(|iid| arrivals.get(iid)).max();
    Ok(Burst {
        triggered: own.len(),
        posted: posted.unwrap_or_else(|| started.elapsed()),
        drained: match own.len() as u64 {
            n if n == backlog => last.map_or(drain_timeout, |at| at - started),
            _ => drain_timeout,
        },
        own,
        others: latencies(&probes),
        rss_max,
    })
}

/// Posts the merge-request event `iid` of `project`; 202 is the only acceptable answer.
async fn post(conn: &mut Conn, project: (u64, &str, &str), iid: u64) -> anyhow::Result<()> {
    let key = format!("00000000-0000-4000-8000-{iid:012x}");
    let key = format!("{:x}{}", project.0, &key[4..]);
    let mut headers = gitlab_headers(&key);
    headers.push(("x-gitlab-token", WEBHOOK_TOKEN.to_owned()));
    let body = Bytes::from(payload::merge_request(project.0, project.1, iid));
    let (status, answer) = conn.send("POST", "/hooks/gitlab", &headers, body).await?;
    anyhow::ensure!(
        status == 202,
        "webhook answered {status}: {}",
        String::from_utf8_lossy(&answer)
    );
    Ok(())
}

fn print_percentiles(name: &str, latencies: &mut [Duration]) {
    latencies.sort_unstable();
    let at = |q: f64| {
        let index = ((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1);
        latencies.get(index).map_or(f64::NAN, |d| ms(*d))
    };
    println!(
        "{name}_p50_ms={:.2}\n{name}_p99_ms={:.2}",
        at(0.5),
        at(0.99)
    );
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A loopback port nothing listens on right now.
fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}
