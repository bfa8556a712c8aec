//! One ci-bridge release binary as a child process: its configuration file, its log
//! (stderr, appended across restarts), start, SIGKILL and restart.

use std::{
    fs::OpenOptions,
    io::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub const WEBHOOK_TOKEN: &str = "process-webhook-token";
pub const CALLBACK_TOKEN: &str = "process-callback-token";
pub const ADMIN_TOKEN: &str = "process-admin-token";
pub const PROJECT: &str = "analytics/collector";
pub const PROJECT_ID: u64 = 42;
pub const JOB: &str = "analytics/collector-ci";
/// The status name ci-bridge posts by default.
pub const STATUS_NAME: &str = "jenkins";

/// How long a start may take (migrations included) before the test fails.
const START_LIMIT: Duration = Duration::from_secs(20);
/// Starts tried before giving up when the chosen port was taken meanwhile.
const START_ATTEMPTS: usize = 3;

/// What a replica's configuration file says.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub gitlab_url: String,
    pub jenkins_url: String,
    /// `worker.lease`, e.g. `"5s"`.
    pub lease: String,
    pub concurrency: u32,
}

impl Settings {
    fn toml(&self, port: u16) -> String {
        let gitlab_token = ci_bridge_fakes::GitLabOptions::default().token;
        let jenkins = ci_bridge_fakes::JenkinsOptions::default();
        format!(
            r#"[server]
listen = "127.0.0.1:{port}"
admin_token = "{ADMIN_TOKEN}"
shutdown_timeout = "2s"

[database]
url = "{database}"

[gitlab]
url = "{gitlab}"
token = "{gitlab_token}"
webhook_token = "{WEBHOOK_TOKEN}"

[jenkins]
url = "{jenkins_url}"
user = "{user}"
api_token = "{api_token}"
callback_token = "{CALLBACK_TOKEN}"
poll_interval = "50ms"
build_timeout = "5m"

[worker]
concurrency = {concurrency}
lease = "{lease}"

[log]
level = "info"

[[projects]]
gitlab = "{PROJECT}"
job = "{JOB}"
"#,
            database = self.database_url,
            gitlab = self.gitlab_url,
            jenkins_url = self.jenkins_url,
            user = jenkins.user,
            api_token = jenkins.api_token,
            concurrency = self.concurrency,
            lease = self.lease,
        )
    }
}

/// A ci-bridge process that can be killed and started again on the same database.
pub struct Replica {
    pub name: String,
    settings: Settings,
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    url: String,
    starts: usize,
}

impl Replica {
    /// A replica named `name` whose config lives in `dir` and whose log is `log`.
    pub fn new(name: &str, settings: Settings, dir: &Path, log: PathBuf) -> Self {
        let _ = std::fs::remove_file(&log);
        Self {
            name: name.to_owned(),
            settings,
            dir: dir.to_owned(),
            log,
            child: None,
            url: String::new(),
            starts: 0,
        }
    }

    /// `http://127.0.0.1:PORT` of the running process.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Starts the binary on a free port and waits until `/healthz` answers. A port taken
    /// between choosing and binding it is chosen again.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        for _ in 0..START_ATTEMPTS {
            match self.start_once().await {
                Ok(()) => return,
                Err(log) if log.contains("cannot listen") => continue,
                Err(log) => panic!("{} did not start:\n{log}", self.name),
            }
        }
        panic!("{} found no free port:\n{}", self.name, self.log_tail(30));
    }

    async fn start_once(&mut self) -> Result<(), String> {
        self.starts += 1;
        let port = free_port();
        let config = self.dir.join(format!("{}.toml", self.name));
        std::fs::write(&config, self.settings.toml(port)).expect("write the config");
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the replica log");
        let _ = writeln!(log, "===== test: start #{} on port {port}", self.starts);
        let child = Command::new(crate::binary::path())
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("RUST_LOG")
            .env_remove("CI_BRIDGE_CONFIG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone the log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn ci-bridge");
        self.child = Some(child);
        self.url = format!("http://127.0.0.1:{port}");
        self.wait_healthy().await
    }

    /// Polls `/healthz`; on failure returns the log's tail.
    async fn wait_healthy(&mut self) -> Result<(), String> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let answer = http.get(format!("{}/healthz", self.url)).send().await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                return Err(format!("exited ({status}):\n{}", self.log_tail(30)));
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!("not healthy in time:\n{}", self.log_tail(30)));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, then reap the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            let mut log = OpenOptions::new().append(true).open(&self.log).ok();
            if let Some(log) = log.as_mut() {
                let _ = writeln!(log, "===== test: SIGKILL");
            }
        }
    }

    /// SIGKILL and start again on the same database.
    pub async fn restart(&mut self) {
        self.kill();
        self.start().await;
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nobody listens on now: bound on 127.0.0.1:0 and released.
fn free_port() -> u16 {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    socket.local_addr().expect("local address").port()
}

/// The folder of a scenario's logs: under the target dir, so that they outlive the test,
/// and under this run's process id, so that two runs of the suite (a `cargo test
/// --workspace` next to a `cargo test --test process`) do not mix their logs.
pub fn log_dir(scenario: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("process")
        .join(format!("run-{}", std::process::id()))
        .join(scenario);
    std::fs::create_dir_all(&dir).expect("create the log folder");
    dir
}
