//! The world a scenario runs in: the strict fakes of GitLab and Jenkins in this process,
//! proxies in front of them, a scratch folder, and read access to ci-bridge's database.

use std::{future::Future, time::Duration};

use ci_bridge_fakes::{
    gitlab::{FakeGitLab, GitLabOptions},
    jenkins::{FakeJenkins, JenkinsOptions},
};
use sqlx::AnyPool;

use crate::{
    proxy::Proxy,
    replica::{Settings, JOB, PROJECT, PROJECT_ID},
};

/// The parameters the Jenkins job defines (Jenkins drops any other).
const JOB_PARAMS: &[&str] = &[
    "CI_BRIDGE_BUILD_ID",
    "gitlabActionType",
    "gitlabBranch",
    "gitlabSourceBranch",
    "gitlabTargetBranch",
    "gitlabBefore",
    "gitlabAfter",
    "gitlabSourceRepoHttpUrl",
    "gitlabSourceRepoName",
    "gitlabSourceNamespace",
    "gitlabUserName",
    "gitlabUserUsername",
    "gitlabUserEmail",
];

pub struct World {
    pub gitlab: FakeGitLab,
    pub jenkins: FakeJenkins,
    pub dir: tempfile::TempDir,
}

impl World {
    /// Fakes with short quiet periods and builds, the project and job registered.
    pub async fn start() -> Self {
        let gitlab = FakeGitLab::start(GitLabOptions::default()).await;
        gitlab.add_project(PROJECT_ID, PROJECT);
        let jenkins = FakeJenkins::start(JenkinsOptions {
            quiet_period: Duration::from_millis(20),
            build_duration: Duration::from_millis(50),
            ..JenkinsOptions::default()
        })
        .await;
        jenkins.add_job(JOB, JOB_PARAMS);
        Self {
            gitlab,
            jenkins,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A fresh SQLite file in the scratch folder.
    pub fn sqlite_url(&self) -> String {
        format!(
            "sqlite://{}",
            self.dir.path().join("ci-bridge.db").display()
        )
    }

    /// Settings for a replica reaching the fakes through `gitlab` and `jenkins`.
    pub fn settings(&self, database_url: &str, gitlab: &Proxy, jenkins: &Proxy) -> Settings {
        Settings {
            database_url: database_url.to_owned(),
            gitlab_url: gitlab.url(),
            jenkins_url: jenkins.url(),
            lease: "5s".to_owned(),
            concurrency: 4,
        }
    }
}

/// Read access to the database a replica writes (SQLite file or PostgreSQL).
pub async fn open_database(url: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"))
}

/// Polls `check` every 25 ms until it returns true or `limit` passes; returns whether it
/// became true.
pub async fn wait_until<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Like [`wait_until`], but fails the test with `what` on timeout.
pub async fn must<F, Fut>(what: &str, limit: Duration, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    assert!(
        wait_until(limit, check).await,
        "timed out waiting for {what}"
    );
}

/// Runs scenarios one at a time: they kill processes on a timer-sensitive schedule (a 5 s
/// lease) and share two cores.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
        .lock()
        .await
}
