//! Configuration of the quality and compliance features: SonarQube webhooks, SAST reports,
//! four-eyes approvals, the summary note, and the scheduled deviation check.
//!
//! `[sonarqube]` and `[compliance]` are top-level tables; each project adds its own
//! `[projects.quality]` sub-table under its `[[projects]]` entry.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};
use url::Url;

use super::{invalid, ConfigError, Secrets};

/// `[sonarqube]`: how SonarQube's webhook is authenticated.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SonarQubeConfig {
    /// The webhook secret(s) SonarQube signs with (`X-Sonar-Webhook-HMAC-SHA256`).
    pub webhook_secret: Secrets,
}

/// `[compliance]`: the scheduled deviation check.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComplianceConfig {
    /// `daily`, `weekly`, or a duration like `"12h"`. The check is off without a webhook.
    pub interval: Option<String>,
    /// Where the deviations are posted (JSON with a `text` field: Slack and Mattermost
    /// incoming webhooks accept it as it is). Never logged: it often embeds a token.
    pub webhook_url: Option<super::Secret>,
}

impl ComplianceConfig {
    /// The period between two checks.
    pub fn period(&self) -> Duration {
        self.interval
            .as_deref()
            .and_then(|text| parse_interval(text).ok())
            .unwrap_or(DAY)
    }
}

const DAY: Duration = Duration::from_secs(24 * 3600);

fn parse_interval(text: &str) -> Result<Duration, String> {
    match text {
        "daily" => Ok(DAY),
        "weekly" => Ok(DAY * 7),
        other => humantime::parse_duration(other).map_err(|e| e.to_string()),
    }
}

/// A GitLab SAST severity, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Unknown,
    Low,
    Medium,
    High,
    Critical,
    /// Only in `sast_fail_at`: no severity fails the status.
    Never,
}

impl Severity {
    /// Reads a report's severity; anything missing or unknown is `Unknown`.
    pub fn from_report(text: Option<&str>) -> Self {
        match text.map(str::to_ascii_lowercase).as_deref() {
            Some("info") => Self::Info,
            Some("low") => Self::Low,
            Some("medium") => Self::Medium,
            Some("high") => Self::High,
            Some("critical") => Self::Critical,
            _ => Self::Unknown,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Info => "Info",
            Self::Unknown => "Unknown",
            Self::Low => "Low",
            Self::Medium => "Medium",
            Self::High => "High",
            Self::Critical => "Critical",
            Self::Never => "never",
        }
    }

    /// Critical first, as the note lists them.
    pub const REPORTED: [Severity; 6] = [
        Self::Critical,
        Self::High,
        Self::Medium,
        Self::Low,
        Self::Unknown,
        Self::Info,
    ];
}

/// `[projects.quality]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityConfig {
    /// Post the four-eyes status and the summary note on this project's merge requests
    /// (on by default: that is what ci-bridge is deployed for).
    /// Evidence of merges is recorded either way.
    pub merge_request_checks: bool,
    /// SonarQube project key(s) whose analyses belong to this GitLab project.
    pub sonarqube_project: Vec<String>,
    /// Commit status names.
    pub sonarqube_status: String,
    pub sast_status: String,
    pub four_eyes_status: String,
    /// The `sast` status fails when a finding is at or above this severity.
    pub sast_fail_at: Severity,
    /// Ratings ci-bridge requires on top of SonarQube's own gate, metric → worst allowed
    /// letter, e.g. `{ new_security_rating = "A", new_security_review_rating = "A" }`.
    pub required_ratings: BTreeMap<String, String>,
    /// Approvals a merge needs before the report shows no deviation (GitLab's standard: 2).
    pub required_approvals: u32,
    /// Branches whose pushes must be explained by a merge, besides the default branch and
    /// any branch GitLab reports as protected.
    pub protected_branches: Vec<String>,
    /// Findings listed by name in the summary note.
    pub note_top_findings: usize,
}

impl Default for QualityConfig {
    fn default() -> Self {
        Self {
            merge_request_checks: true,
            sonarqube_project: Vec::new(),
            sonarqube_status: "sonarqube".into(),
            sast_status: "sast".into(),
            four_eyes_status: "four-eyes".into(),
            sast_fail_at: Severity::High,
            required_ratings: BTreeMap::new(),
            required_approvals: 2,
            protected_branches: Vec::new(),
            note_top_findings: 5,
        }
    }
}

/// SonarQube's rating metrics, classic and MQR mode; each also exists for new code with
/// the `new_` prefix.
pub const RATING_METRICS: [&str; 8] = [
    "security_rating",
    "security_review_rating",
    "reliability_rating",
    "maintainability_rating",
    "sqale_rating",
    "software_quality_security_rating",
    "software_quality_reliability_rating",
    "software_quality_maintainability_rating",
];

/// True for a key of [`RATING_METRICS`], with or without `new_`.
pub fn is_rating_metric(metric: &str) -> bool {
    let overall = metric.strip_prefix("new_").unwrap_or(metric);
    RATING_METRICS.contains(&overall)
}

/// `A`..`E` → 1..5.
pub fn rating_value(letter: &str) -> Option<u8> {
    match letter.trim().to_ascii_uppercase().as_str() {
        "A" => Some(1),
        "B" => Some(2),
        "C" => Some(3),
        "D" => Some(4),
        "E" => Some(5),
        _ => None,
    }
}

/// Checks `[projects.quality]` of the project at `key` (`projects[N]`).
pub fn validate_project(key: &str, quality: &QualityConfig) -> Result<(), ConfigError> {
    for (name, value) in [
        ("sonarqube_status", &quality.sonarqube_status),
        ("sast_status", &quality.sast_status),
        ("four_eyes_status", &quality.four_eyes_status),
    ] {
        if value.is_empty() || value.len() > 255 {
            return Err(invalid(
                format!("{key}.quality.{name}"),
                "must be 1 to 255 characters",
            ));
        }
    }
    for (metric, letter) in &quality.required_ratings {
        if !is_rating_metric(metric) {
            return Err(invalid(
                format!("{key}.quality.required_ratings.{metric}"),
                format!(
                    "is not a SonarQube rating metric (one of {}, each also with new_)",
                    RATING_METRICS.join(", ")
                ),
            ));
        }
        if rating_value(letter).is_none() {
            return Err(invalid(
                format!("{key}.quality.required_ratings.{metric}"),
                "must be a rating letter A to E",
            ));
        }
    }
    if quality
        .sonarqube_project
        .iter()
        .any(|k| k.trim().is_empty())
    {
        return Err(invalid(
            format!("{key}.quality.sonarqube_project"),
            "must not be empty",
        ));
    }
    Ok(())
}

/// Checks `[sonarqube]` and `[compliance]`, and that no SonarQube key names two projects.
pub fn validate(config: &super::Config) -> Result<(), ConfigError> {
    if let Some(sonar) = &config.sonarqube {
        if sonar.webhook_secret.is_empty() || sonar.webhook_secret.iter().any(|s| s.is_empty()) {
            return Err(invalid(
                "sonarqube.webhook_secret",
                "must be set and not empty",
            ));
        }
    }
    let compliance = &config.compliance;
    if let Some(interval) = &compliance.interval {
        match parse_interval(interval) {
            Ok(period) if period >= Duration::from_millis(100) => {}
            Ok(_) => return Err(invalid("compliance.interval", "must be at least 100ms")),
            Err(e) => {
                return Err(invalid(
                    "compliance.interval",
                    format!("daily, weekly or a duration: {e}"),
                ))
            }
        }
    }
    if let Some(url) = &compliance.webhook_url {
        let parsed = Url::parse(url.expose()).map_err(|_| {
            invalid(
                "compliance.webhook_url",
                "must be an http:// or https:// URL",
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(invalid(
                "compliance.webhook_url",
                "must be an http:// or https:// URL",
            ));
        }
    }
    let mut keys = std::collections::HashSet::new();
    for (index, project) in config.projects.iter().enumerate() {
        let key = format!("projects[{index}]");
        validate_project(&key, &project.quality)?;
        for sonar_key in &project.quality.sonarqube_project {
            if !keys.insert(sonar_key.as_str()) {
                return Err(invalid(
                    format!("{key}.quality.sonarqube_project"),
                    format!("{sonar_key} is mapped to two projects"),
                ));
            }
        }
    }
    Ok(())
}

impl super::Config {
    /// The project a SonarQube project key belongs to.
    pub fn project_for_sonarqube(&self, key: &str) -> Option<&super::ProjectConfig> {
        self.projects
            .iter()
            .find(|p| p.quality.sonarqube_project.iter().any(|k| k == key))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Severity};

    const BASE: &str = r#"
[gitlab]
url = "https://gitlab.example.com"
token = "glpat-secret-value"
webhook_token = "hook-secret-value"

[jenkins]
url = "https://jenkins.example.com"
user = "ci-bridge"
api_token = "jenkins-secret-value"
callback_token = "callback-secret-value"

[sonarqube]
webhook_secret = "sonar-secret-value-0123"

[compliance]
interval = "weekly"
webhook_url = "https://chat.example.com/hooks/token-in-url"

[[projects]]
gitlab = "analytics/collector"
job = "analytics/collector-ci"
[projects.quality]
merge_request_checks = false
sonarqube_project = ["collector"]
sast_fail_at = "medium"
required_ratings = { new_security_rating = "A" }
"#;

    #[test]
    fn the_quality_tables_parse_and_their_secrets_never_print() {
        let config = Config::parse(BASE).unwrap();
        let quality = &config.projects[0].quality;
        assert!(!quality.merge_request_checks);
        assert_eq!(quality.sast_fail_at, Severity::Medium);
        assert_eq!(quality.four_eyes_status, "four-eyes");
        assert_eq!(quality.required_approvals, 2);
        assert_eq!(config.compliance.period().as_secs(), 7 * 24 * 3600);
        assert!(config.project_for_sonarqube("collector").is_some());
        let shown = config.to_masked_toml();
        assert!(!shown.contains("sonar-secret-value"), "{shown}");
        assert!(!shown.contains("token-in-url"), "{shown}");
    }

    #[test]
    fn merge_request_checks_are_on_unless_turned_off() {
        let start = BASE.find("[projects.quality]").unwrap();
        let config = Config::parse(&BASE[..start]).unwrap();
        assert!(config.projects[0].quality.merge_request_checks);
    }

    #[test]
    fn a_misspelled_rating_metric_is_named() {
        let bad = BASE.replace("new_security_rating", "new_security_ratin");
        let error = Config::parse(&bad).unwrap_err().to_string();
        assert!(
            error.contains("required_ratings.new_security_ratin"),
            "{error}"
        );
        assert!(error.contains("not a SonarQube rating metric"), "{error}");
        let good = BASE.replace(
            "new_security_rating",
            "new_software_quality_security_rating",
        );
        Config::parse(&good).unwrap();
    }

    #[test]
    fn a_wrong_quality_key_is_named() {
        let bad = BASE.replace("= \"A\" }", "= \"F\" }");
        let error = Config::parse(&bad).unwrap_err().to_string();
        assert!(
            error.contains("projects[0].quality.required_ratings.new_security_rating"),
            "{error}"
        );
        let bad = BASE.replace("\"weekly\"", "\"fortnightly\"");
        let error = Config::parse(&bad).unwrap_err().to_string();
        assert!(error.contains("compliance.interval"), "{error}");
    }
}
