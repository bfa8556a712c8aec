//! The whole-app harness: the real application on a port-0 listener, against the strict
//! fakes of GitLab and Jenkins, on a fresh SQLite file (or PostgreSQL database).

use std::{future::Future, time::Duration};

use ci_bridge::{config::Config, store::Store, Application};
use ci_bridge_fakes::{
    gitlab::{FakeGitLab, GitLabOptions},
    jenkins::{FakeJenkins, JenkinsOptions},
};
use tokio_util::sync::CancellationToken;

pub const WEBHOOK_TOKEN: &str = "test-webhook-token";
pub const CALLBACK_TOKEN: &str = "test-callback-token";
pub const ADMIN_TOKEN: &str = "test-admin-token";
/// A Standard Webhooks key (`whsec_` + base64 of 32 bytes).
pub const SIGNING_TOKEN: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo=";
pub const PROJECT: &str = "analytics/collector";
pub const JOB: &str = "analytics/collector-ci";
/// The parameters the test job defines (Jenkins drops any other).
pub const JOB_PARAMS: &[&str] = &[
    "CI_BRIDGE_BUILD_ID",
    "gitlabActionType",
    "gitlabBranch",
    "gitlabSourceBranch",
    "gitlabTargetBranch",
    "gitlabBefore",
    "gitlabAfter",
    "gitlabMergeRequestIid",
    "gitlabMergeRequestId",
    "gitlabMergeRequestTitle",
    "gitlabMergeRequestLastCommit",
    "gitlabMergeRequestTargetProjectId",
    "gitlabSourceRepoHttpUrl",
    "gitlabSourceRepoName",
    "gitlabSourceNamespace",
    "gitlabUserName",
    "gitlabUserUsername",
    "gitlabUserEmail",
];

/// How a test wants its world set up.
#[derive(Default)]
pub struct Options {
    pub jenkins: JenkinsOptions,
    /// Extra TOML appended to the generated configuration.
    pub extra_config: String,
    /// Project sections; by default one project, `PROJECT` → `JOB`, with the webhook token.
    pub projects: Option<String>,
    pub database_url: Option<String>,
    /// Extra keys of the `[server]` table.
    pub server_config: String,
}

pub struct TestApp {
    pub url: String,
    pub http: reqwest::Client,
    pub gitlab: FakeGitLab,
    pub jenkins: FakeJenkins,
    pub store: Store,
    pub config_text: String,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> Self {
        if std::env::var_os("CI_BRIDGE_TEST_LOG").is_some() {
            ci_bridge::cli::init_logging(&ci_bridge::config::LogConfig {
                level: "ci_bridge=debug".into(),
                ..Default::default()
            });
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let gitlab = FakeGitLab::start(GitLabOptions::default()).await;
        let jenkins = FakeJenkins::start(options.jenkins.clone()).await;
        jenkins.add_job(JOB, JOB_PARAMS);
        let database_url = match options.database_url.clone() {
            Some(url) => url,
            None => fresh_database(&dir).await,
        };
        let projects = options
            .projects
            .clone()
            .unwrap_or_else(|| format!("[[projects]]\ngitlab = \"{PROJECT}\"\njob = \"{JOB}\"\n"));
        let jenkins_defaults = JenkinsOptions::default();
        let config_text = format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_token = "{ADMIN_TOKEN}"
shutdown_timeout = "2s"
{server_config}

[database]
url = "{database_url}"

[gitlab]
url = "{gitlab}"
token = "{gitlab_token}"
webhook_token = "{WEBHOOK_TOKEN}"

[jenkins]
url = "{jenkins}"
user = "{user}"
api_token = "{api_token}"
callback_token = "{CALLBACK_TOKEN}"
poll_interval = "20ms"
branch_job_wait = "1s"

[worker]
concurrency = 4

{projects}
{extra}
"#,
            gitlab = gitlab.base_url(),
            gitlab_token = GitLabOptions::default().token,
            jenkins = jenkins.base_url(),
            user = if options.jenkins.user.is_empty() {
                jenkins_defaults.user
            } else {
                options.jenkins.user.clone()
            },
            api_token = options.jenkins.api_token,
            extra = options.extra_config,
            server_config = options.server_config,
        );
        let running = launch(&config_text).await;
        Self {
            url: running.url,
            http: reqwest::Client::new(),
            gitlab,
            jenkins,
            store: running.store,
            config_text,
            shutdown: running.shutdown,
            task: Some(running.task),
            _dir: dir,
        }
    }

    /// Starts the application again, after [`TestApp::stop`], on the same database and
    /// fakes (as a restart does).
    pub async fn start(&mut self) {
        let running = launch(&self.config_text).await;
        self.url = running.url;
        self.store = running.store;
        self.shutdown = running.shutdown;
        self.task = Some(running.task);
    }

    /// Stops the application the way SIGTERM does, and waits for it.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    /// Posts a GitLab webhook with the usual headers and the test token.
    pub async fn post_gitlab(
        &self,
        event: &str,
        body: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/hooks/gitlab", self.url))
            .header("Content-Type", "application/json")
            .header("X-Gitlab-Event", event)
            .header("User-Agent", "GitLab/17.4.0")
            .body(body.to_owned());
        let has_token = extra
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("x-gitlab-token"));
        if !has_token {
            request = request.header("X-Gitlab-Token", WEBHOOK_TOKEN);
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request reaches the app")
    }

    pub async fn post_callback(&self, body: serde_json::Value, token: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/hooks/jenkins", self.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request reaches the app")
    }

    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("request reaches the app")
    }

    pub async fn event_count(&self) -> i64 {
        self.store.event_count().await.expect("count events")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Names the PostgreSQL server the suite runs on instead of SQLite, as a URL of a database
/// that may be used to create others (`postgres://postgres@127.0.0.1:5432/test`).
pub const POSTGRES_ENV: &str = "CI_BRIDGE_TEST_POSTGRES";

/// A database no other test uses: a new SQLite file, or with [`POSTGRES_ENV`] set, a new
/// PostgreSQL database on that server.
async fn fresh_database(dir: &tempfile::TempDir) -> String {
    let Ok(admin_url) = std::env::var(POSTGRES_ENV) else {
        return format!("sqlite://{}", dir.path().join("ci-bridge.db").display());
    };
    use sqlx::{Connection, Executor};
    let name = format!("ci_bridge_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_ENV} is set but PostgreSQL is not reachable: {e}"));
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create a test database");
    let mut url = url::Url::parse(&admin_url).expect("a postgres:// URL");
    url.set_path(&name);
    url.to_string()
}

struct Running {
    url: String,
    store: Store,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn launch(config_text: &str) -> Running {
    let config = Config::parse(config_text).expect("test config is valid");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let app = Application::build(config, listener)
        .await
        .expect("app builds");
    Running {
        url: format!("http://{}", app.local_addr().expect("address")),
        store: app.store(),
        shutdown: app.shutdown_token(),
        task: tokio::spawn(async move {
            app.run().await.expect("app runs");
        }),
    }
}

/// Waits until `check` returns `Some`, polling every 10 ms, for at most `limit`; panics
/// with `what` when it never does.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The default wait for something the app does on its own.
pub const WAIT: Duration = Duration::from_secs(10);
