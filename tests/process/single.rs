//! One ci-bridge process on an SQLite file, with proxies in front of both fakes: the set-up
//! of every crash-safety scenario.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use sqlx::AnyPool;

use crate::{
    load::Answer,
    proxy::Proxy,
    replica::{log_dir, Replica},
    verify,
    world::World,
};

/// Webhooks each scenario sends.
pub const EVENTS: usize = 50;
/// How long a scenario may take to settle after its last fault.
pub const SETTLE: Duration = Duration::from_secs(45);

pub struct Single {
    pub name: &'static str,
    pub world: World,
    pub gitlab: Proxy,
    pub jenkins: Proxy,
    pub replica: Replica,
    pub db: AnyPool,
    pub started: Instant,
}

impl Single {
    /// Starts the fakes, the proxies and the binary (lease `lease`, 4 workers).
    pub async fn start(name: &'static str, lease: &str, concurrency: u32) -> Self {
        let started = Instant::now();
        let world = World::start().await;
        let gitlab = Proxy::start(&world.gitlab.base_url()).await;
        let jenkins = Proxy::start(&world.jenkins.base_url()).await;
        let url = world.sqlite_url();
        let mut settings = world.settings(&url, &gitlab, &jenkins);
        settings.lease = lease.to_owned();
        settings.concurrency = concurrency;
        let log = log_dir(name).join("ci-bridge.log");
        let mut replica = Replica::new("ci-bridge", settings, world.dir.path(), log);
        replica.start().await;
        let db = crate::world::open_database(&url).await;
        Self {
            name,
            world,
            gitlab,
            jenkins,
            replica,
            db,
            started,
        }
    }

    /// Sends `count` pushes, 16 at a time; every one must be accepted.
    pub async fn send(&self, count: usize) -> Vec<Answer> {
        let deliveries = crate::load::pushes(self.name, count);
        let answers = crate::load::deliver_all(self.replica.url(), &deliveries, 16).await;
        let refused: Vec<_> = answers.iter().filter(|a| a.status != 202).collect();
        assert!(refused.is_empty(), "not accepted: {refused:?}");
        answers
    }

    /// Waits until ci-bridge is quiet, checks every accepted event, prints the summary
    /// and fails on anything lost, doubled or moved backwards.
    pub async fn settle_and_check(&self, answers: &[Answer]) -> verify::Report {
        self.settle_and_expect(answers, "success").await
    }

    /// As [`Single::settle_and_check`], with every status ending in `expected`.
    pub async fn settle_and_expect(&self, answers: &[Answer], expected: &str) -> verify::Report {
        let accepted: BTreeMap<String, String> = verify::accepted(answers);
        let shas: BTreeSet<String> = accepted.values().cloned().collect();
        let proxies = [&self.gitlab, &self.jenkins];
        let quiet = verify::wait_quiet(&self.world, &self.db, &shas, &proxies, SETTLE).await;
        let mut report = verify::check(&self.world, &self.db, &accepted, expected).await;
        if !quiet {
            report.problems.push(format!("not quiet after {SETTLE:?}"));
        }
        verify::conclude(self.name, &report, self.started, &[self.replica.log_path()]);
        report
    }
}
