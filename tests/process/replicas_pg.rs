//! Replicas on PostgreSQL (issue 6): three release binaries share one database; webhooks
//! are spread across them, some delivered to two at the same moment, and one replica is
//! killed with SIGKILL while it holds jobs. Its leases run out and the others finish.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use sqlx::{Connection, Executor, Row};

use crate::{
    load::{deliver, pushes, Answer, Delivery},
    proxy::{Hold, Proxy, Rule},
    replica::{log_dir, Replica},
    verify,
    world::{exclusive, must, open_database, World},
};

/// Names the PostgreSQL server to run on: a URL of a database that may create others.
const POSTGRES_ENV: &str = "CI_BRIDGE_TEST_POSTGRES";
const REPLICAS: usize = 3;
/// The replica killed mid-run.
const VICTIM: usize = 2;
const EVENTS: usize = 300;
/// Every this many deliveries, one goes to two replicas at the same moment.
const PAIR_EVERY: usize = 15;
/// Waiting for leases to run out (5 s) and the survivors to finish.
const SETTLE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_build_each_event_once_when_one_is_killed_mid_run() {
    let Ok(admin_url) = std::env::var(POSTGRES_ENV) else {
        use std::io::Write as _;
        let note = format!("process/replicas_pg: skipped; set {POSTGRES_ENV} to run it\n");
        let _ = std::io::stderr().write_all(note.as_bytes());
        return;
    };
    let _one_at_a_time = exclusive().await;
    let started = Instant::now();
    let (database_url, database) = fresh_database(&admin_url).await;
    let world = World::start().await;
    let gitlab = Proxy::start(&world.gitlab.base_url()).await;
    let mut jenkins = Vec::new();
    let mut replicas = Vec::new();
    for index in 0..REPLICAS {
        let proxy = Proxy::start(&world.jenkins.base_url()).await;
        let settings = world.settings(&database_url, &gitlab, &proxy);
        let name = format!("replica-{index}");
        let log = log_dir("replicas_pg").join(format!("{name}.log"));
        let mut replica = Replica::new(&name, settings, world.dir.path(), log);
        // One at a time: each start runs the migrations.
        replica.start().await;
        replicas.push(replica);
        jenkins.push(proxy);
    }
    let db = open_database(&database_url).await;
    // The victim's triggers reach Jenkins, but it never learns so: it holds their jobs.
    jenkins[VICTIM].hold(Rule::jenkins_triggers(Hold::AfterForward));

    let live: Arc<Mutex<Vec<Option<String>>>> = Arc::new(Mutex::new(
        replicas.iter().map(|r| Some(r.url().to_owned())).collect(),
    ));
    let sent = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(send_load(live.clone(), sent.clone()));

    let (victim, progress) = (jenkins[VICTIM].clone(), sent.clone());
    must(
        "the victim holding four triggers a third into the run",
        Duration::from_secs(30),
        || {
            let (victim, progress) = (victim.clone(), progress.clone());
            async move { victim.held() >= 4 && progress.load(Ordering::SeqCst) >= EVENTS / 3 }
        },
    )
    .await;
    live.lock().expect("live replicas")[VICTIM] = None;
    replicas[VICTIM].kill();
    jenkins[VICTIM].release();
    let answers = load.await.expect("load task");

    let accepted = verify::accepted(&answers);
    let shas: BTreeSet<String> = accepted.values().cloned().collect();
    let mut proxies: Vec<&Proxy> = jenkins.iter().collect();
    proxies.push(&gitlab);
    let quiet = verify::wait_quiet(&world, &db, &shas, &proxies, SETTLE).await;
    let mut report = verify::check(&world, &db, &accepted, "success").await;
    if !quiet {
        report.problems.push(format!("not quiet after {SETTLE:?}"));
    }
    report.problems.extend(one_event_per_key(&answers));
    let duplicated_keys = sqlx::query(
        "SELECT dedup_key, COUNT(*) AS n FROM events GROUP BY dedup_key HAVING COUNT(*) > 1",
    )
    .fetch_all(&db)
    .await
    .expect("events by key");
    for row in duplicated_keys {
        let key: String = row.try_get("dedup_key").unwrap_or_default();
        report
            .problems
            .push(format!("DOUBLED delivery {key}: stored as several events"));
    }
    // The logs stay for a look; the database goes, whatever the verdict.
    let logs: Vec<std::path::PathBuf> = replicas.iter().map(|r| r.log_path().into()).collect();
    drop(replicas);
    db.close().await;
    drop_database(&admin_url, &database).await;
    let logs: Vec<&std::path::Path> = logs.iter().map(|p| p.as_path()).collect();
    verify::conclude("replicas_pg", &report, started, &logs);
}

/// Sends [`EVENTS`] pushes round-robin over the live replicas, 12 at a time, and every
/// [`PAIR_EVERY`]th to two of them at once. A delivery no replica answered is redelivered
/// to the next one, as GitLab (or a load balancer) would.
async fn send_load(live: Arc<Mutex<Vec<Option<String>>>>, sent: Arc<AtomicUsize>) -> Vec<Answer> {
    let http = reqwest::Client::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(12));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, delivery) in pushes("replicas", EVENTS).into_iter().enumerate() {
        let (http, gate, live, sent) = (http.clone(), gate.clone(), live.clone(), sent.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("semaphore");
            let answers = if index % PAIR_EVERY == 0 {
                let (a, b) = tokio::join!(
                    redeliver(&http, &live, index, &delivery),
                    redeliver(&http, &live, index + 1, &delivery)
                );
                [a, b].concat()
            } else {
                redeliver(&http, &live, index, &delivery).await
            };
            sent.fetch_add(1, Ordering::SeqCst);
            answers
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = tasks.join_next().await {
        answers.extend(done.expect("delivery task"));
    }
    answers
}

/// Delivers to the `start`th live replica, then the next ones until one answers 2xx;
/// returns every answer.
async fn redeliver(
    http: &reqwest::Client,
    live: &Mutex<Vec<Option<String>>>,
    start: usize,
    delivery: &Delivery,
) -> Vec<Answer> {
    let mut answers = Vec::new();
    for attempt in 0..2 * REPLICAS {
        let target = live.lock().expect("live replicas")[(start + attempt) % REPLICAS].clone();
        let Some(url) = target else { continue };
        let answer = deliver(http, &url, delivery).await;
        let done = answer.is_2xx();
        answers.push(answer);
        if done {
            break;
        }
    }
    answers
}

/// Every answer for one Idempotency-Key names the same event, and exactly one of them was
/// the `202 accepted`.
fn one_event_per_key(answers: &[Answer]) -> Vec<String> {
    let mut by_key: BTreeMap<&str, Vec<&Answer>> = BTreeMap::new();
    for answer in answers.iter().filter(|a| a.is_2xx()) {
        by_key
            .entry(answer.delivery.key.as_str())
            .or_default()
            .push(answer);
    }
    let mut problems = Vec::new();
    for (key, answers) in by_key {
        let ids: BTreeSet<_> = answers
            .iter()
            .filter_map(|a| a.event_id.as_deref())
            .collect();
        let accepted = answers.iter().filter(|a| a.status == 202).count();
        if ids.len() != 1 || accepted > 1 {
            let seen: Vec<_> = answers.iter().map(|a| (a.status, &a.event_id)).collect();
            problems.push(format!("DOUBLED delivery {key}: answers {seen:?}"));
        }
    }
    problems
}

/// Creates a database no other run uses; returns its URL and name.
async fn fresh_database(admin_url: &str) -> (String, String) {
    let name = format!("ci_bridge_test_process_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_ENV} is set but PostgreSQL is not reachable: {e}"));
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create the test database");
    let mut url = url::Url::parse(admin_url).expect("a postgres:// URL");
    url.set_path(&name);
    (url.to_string(), name)
}

async fn drop_database(admin_url: &str, name: &str) {
    if let Ok(mut admin) = sqlx::PgConnection::connect(admin_url).await {
        let _ = admin
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await;
    }
}
