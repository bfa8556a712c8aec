//! ci-bridge as a child process: its configuration, start-up until `/readyz` answers 200,
//! its resident memory, and a graceful stop.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use ci_bridge_bench::client::Conn;
use tokio::process::{Child, Command};

/// Longest wait for `/readyz`, and for a graceful stop, before giving up.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// What the configuration points ci-bridge at.
pub struct Setup<'a> {
    pub listen: SocketAddr,
    pub database: &'a Path,
    pub gitlab_url: &'a str,
    pub gitlab_token: &'a str,
    pub jenkins_url: &'a str,
    pub jenkins_user: &'a str,
    pub jenkins_token: &'a str,
    pub webhook_token: &'a str,
    /// `(GitLab path, Jenkins job)` of every project.
    pub projects: &'a [(&'a str, &'a str)],
}

/// Writes the TOML configuration ci-bridge is started with.
pub fn write_config(path: &Path, setup: &Setup<'_>) -> anyhow::Result<()> {
    let mut text = format!(
        "[server]\nlisten = \"{}\"\n\n[database]\nurl = \"sqlite://{}\"\n\n\
         [gitlab]\nurl = \"{}\"\ntoken = \"{}\"\nwebhook_token = \"{}\"\n\n\
         [jenkins]\nurl = \"{}\"\nuser = \"{}\"\napi_token = \"{}\"\ncallback_token = \"cb\"\n",
        setup.listen,
        setup.database.display(),
        setup.gitlab_url,
        setup.gitlab_token,
        setup.webhook_token,
        setup.jenkins_url,
        setup.jenkins_user,
        setup.jenkins_token,
    );
    for (gitlab, job) in setup.projects {
        text.push_str(&format!(
            "\n[[projects]]\ngitlab = \"{gitlab}\"\njob = \"{job}\"\n"
        ));
    }
    // Extra top-level tables for experiments (`[worker]`, `[log]`), e.g.
    // BENCH_EXTRA_CONFIG=$'[worker]\nconcurrency = 2'.
    if let Ok(extra) = std::env::var("BENCH_EXTRA_CONFIG") {
        text = format!("{extra}\n\n{text}");
    }
    std::fs::write(path, text)?;
    Ok(())
}

/// A running ci-bridge.
pub struct Bridge {
    child: Child,
    pid: u32,
    addr: SocketAddr,
}

impl Bridge {
    /// Starts `binary serve --config CONFIG`, logging to `log`; returns once `/readyz`
    /// answers 200, with the time that took from the spawn.
    pub async fn start(
        binary: &Path,
        config: &Path,
        addr: SocketAddr,
        log: &PathBuf,
    ) -> anyhow::Result<(Self, Duration)> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let spawned = Instant::now();
        let child = Command::new(binary)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .kill_on_drop(true)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let pid = child
            .id()
            .ok_or(anyhow::anyhow!("ci-bridge exited at once"))?;
        let bridge = Self { child, pid, addr };
        loop {
            if spawned.elapsed() > READY_TIMEOUT {
                anyhow::bail!("ci-bridge was not ready after {READY_TIMEOUT:?}");
            }
            if let Ok(mut conn) = Conn::open(addr).await {
                if conn.get("/readyz").await.ok() == Some(200) {
                    return Ok((bridge, spawned.elapsed()));
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Resident memory now and at its peak, in KiB (`VmRSS`, `VmHWM`).
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid));
        let field = |name: &str| {
            status.as_deref().ok().and_then(|text| {
                let line = text.lines().find(|l| l.starts_with(name))?;
                line.split_whitespace().nth(1)?.parse().ok()
            })
        };
        (field("VmRSS:").unwrap_or(0), field("VmHWM:").unwrap_or(0))
    }

    /// SIGTERM, then waits for the graceful stop; kills it if that does not come.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .await;
        if tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .is_err()
        {
            eprintln!("ci-bridge did not stop within {STOP_TIMEOUT:?}; killing it");
            self.child.kill().await?;
        }
        Ok(())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
