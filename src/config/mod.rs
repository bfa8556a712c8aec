//! The configuration file: typed, validated once at start, with every secret masked.
//!
//! The TOML keys documented in the README are the interface. Values may reference
//! environment variables as `${NAME}` (see [`env`]).

mod env;
mod quality;
mod rules;
mod secret;
mod validate;

use std::{net::SocketAddr, path::Path, time::Duration};

use serde::{Deserialize, Serialize};
use url::Url;

pub use quality::{
    rating_value as quality_rating_value, ComplianceConfig, QualityConfig, Severity,
    SonarQubeConfig,
};
pub use rules::{branch_allowed, glob_match, JobConfig, TriggerRules};
pub use secret::{Secret, Secrets};

/// Why a configuration could not be used. Every variant names the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Syntax(String),
    #[error("{key}: environment variable {var} is not set")]
    MissingEnv { key: String, var: String },
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    pub gitlab: GitLabConfig,
    pub jenkins: JenkinsConfig,
    #[serde(default)]
    pub worker: WorkerConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub projects: Vec<ProjectConfig>,
    /// SonarQube webhooks (`POST /hooks/sonarqube`); off without it.
    #[serde(default)]
    pub sonarqube: Option<SonarQubeConfig>,
    /// The scheduled deviation check.
    #[serde(default)]
    pub compliance: ComplianceConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Bearer token for `/api/v1/*`; the admin API is off without it.
    pub admin_token: Option<Secrets>,
    /// Longest time one request may take, body upload included: a client that trickles its
    /// request in is cut off after it.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// A client must send its whole request head within this.
    #[serde(with = "duration")]
    pub header_timeout: Duration,
    /// Requests served at once; further ones wait for a slot.
    pub max_concurrent_requests: usize,
    /// How long shutdown waits for in-flight requests and jobs.
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".parse().expect("valid literal"),
            admin_token: None,
            request_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            max_concurrent_requests: 1024,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (created on first start) or `postgres://...`. A password in it is
    /// a secret; the rest is shown by `check-config`.
    #[serde(serialize_with = "serialize_database_url")]
    pub url: Secret,
    /// Connections in the pool.
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: Secret::new("sqlite://ci-bridge.db"),
            max_connections: 8,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GitLabConfig {
    /// Base URL; the REST API is at `{url}/api/v4`.
    pub url: Url,
    /// API token used for statuses and notes.
    pub token: Secret,
    /// Expected `X-Gitlab-Token` for projects without their own.
    #[serde(default)]
    pub webhook_token: Secrets,
    /// `whsec_` signing keys for projects without their own.
    #[serde(default)]
    pub signing_token: Secrets,
    /// Username of the token's user: its comments are never commands.
    #[serde(default)]
    pub bot_username: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JenkinsConfig {
    /// Base URL ci-bridge calls, path prefix included (`https://ci.example.com/jenkins`).
    pub url: Url,
    /// Base URL people open in a browser, for links in statuses; defaults to `url`.
    #[serde(default)]
    pub public_url: Option<Url>,
    pub user: String,
    /// API token (recommended) or password (then ci-bridge fetches CSRF crumbs).
    pub api_token: Secret,
    /// Bearer token(s) Jenkins sends to `/hooks/jenkins`.
    pub callback_token: Secrets,
    /// How often queue items and builds are polled.
    #[serde(default = "default_poll_interval", with = "duration")]
    pub poll_interval: Duration,
    /// A build still queued or running after this long is reported `failed`, so that no
    /// status stays pending or running forever.
    #[serde(default = "default_build_timeout", with = "duration")]
    pub build_timeout: Duration,
    /// How long a trigger waits for a multibranch project to create the job of a new
    /// branch (Jenkins creates it when it indexes the branch) before reporting it missing.
    #[serde(default = "default_branch_job_wait", with = "duration")]
    pub branch_job_wait: Duration,
}

fn default_branch_job_wait() -> Duration {
    Duration::from_secs(120)
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(2)
}

fn default_build_timeout() -> Duration {
    Duration::from_secs(24 * 3600)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Jobs run at once in this process. Four keeps SQLite's single write lock from
    /// becoming the bottleneck: with eight, workers waiting for it in SQLite's busy
    /// handler (which sleeps up to 100 ms between tries) drained a burst ten times slower.
    pub concurrency: usize,
    /// How long a claimed job stays reserved for this process; a replica that dies loses
    /// its jobs to the others after this.
    #[serde(with = "duration")]
    pub lease: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            lease: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `ci_bridge=debug`; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// `path_with_namespace`, as GitLab sends it.
    pub gitlab: String,
    /// Jenkins job full name; `/` separates folders.
    pub job: String,
    /// Commit status name on GitLab.
    #[serde(default = "default_status_name")]
    pub status_name: String,
    /// Overrides `gitlab.webhook_token` for this project.
    #[serde(default)]
    pub webhook_token: Option<Secrets>,
    /// Overrides `gitlab.signing_token` for this project.
    #[serde(default)]
    pub signing_token: Option<Secrets>,
    /// What builds (`[projects.triggers]`).
    #[serde(default)]
    pub triggers: TriggerRules,
    /// More Jenkins jobs for the same events, each with its own status (`[[projects.jobs]]`).
    #[serde(default)]
    pub jobs: Vec<JobConfig>,
    /// Quality gates, SAST, four eyes (`[projects.quality]`).
    #[serde(default)]
    pub quality: QualityConfig,
}

fn default_status_name() -> String {
    "jenkins".into()
}

impl ProjectConfig {
    /// Every job of the project, the main one first.
    pub fn all_jobs(&self) -> Vec<JobConfig> {
        let main = JobConfig {
            job: self.job.clone(),
            status_name: self.status_name.clone(),
        };
        std::iter::once(main)
            .chain(self.jobs.iter().cloned())
            .collect()
    }

    /// The `X-Gitlab-Token` values accepted for this project.
    pub fn webhook_tokens<'a>(&'a self, gitlab: &'a GitLabConfig) -> &'a Secrets {
        self.webhook_token.as_ref().unwrap_or(&gitlab.webhook_token)
    }

    /// The signing keys accepted for this project.
    pub fn signing_tokens<'a>(&'a self, gitlab: &'a GitLabConfig) -> &'a Secrets {
        self.signing_token.as_ref().unwrap_or(&gitlab.signing_token)
    }
}

impl Config {
    /// Reads, expands and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses, expands and validates configuration text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut value: toml::Value =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        env::expand(&mut value, "")?;
        let config: Config = value
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Syntax(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Looks a project up by its GitLab path.
    pub fn project(&self, path_with_namespace: &str) -> Option<&ProjectConfig> {
        self.projects
            .iter()
            .find(|p| p.gitlab == path_with_namespace)
    }

    /// The configuration as TOML with every secret replaced by a mask.
    pub fn to_masked_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

fn serialize_database_url<S: serde::Serializer>(
    url: &Secret,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&mask_database_url(url.expose()))
}

/// `postgres://user:password@host/db` with the password masked; SQLite paths unchanged.
pub fn mask_database_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("********"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Durations written as `"2s"`, `"500ms"`, `"5m"`.
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*value).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
