//! SonarQube: the webhook it sends when an analysis ends, its signature, and what its
//! quality gate means for a commit status.
//!
//! - The signature is `X-Sonar-Webhook-HMAC-SHA256`: lower-case hex HMAC-SHA256 of the raw
//!   body under the webhook secret, checked in constant time before anything is parsed.
//! - Ratings are numbers 1 to 5 (A to E), in two metric families: the classic
//!   `security_rating` and friends, and the newer `software_quality_*` keys of MQR mode.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::config::{quality_rating_value, QualityConfig, Secrets};

pub mod time;

/// True when `signature` (hex) is the HMAC of `body` under one of `secrets`. Every secret
/// is tried, so the time taken does not tell which matched.
pub fn verify(secrets: &Secrets, body: &[u8], signature: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(signature) else {
        return false;
    };
    let Ok(expected) = hex::decode(text.trim()) else {
        return false;
    };
    secrets.iter().fold(false, |found, secret| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(body);
        mac.verify_slice(&expected).is_ok() | found
    })
}

/// The lower-case hex signature SonarQube sends (for tests and fakes).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The webhook body, the fields ci-bridge reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    #[serde(default)]
    pub server_url: Option<String>,
    #[serde(default)]
    pub task_id: Option<String>,
    #[serde(default)]
    pub analysed_at: Option<String>,
    #[serde(default)]
    pub changed_at: Option<String>,
    #[serde(default)]
    pub revision: Option<String>,
    pub project: AnalysisProject,
    #[serde(default)]
    pub branch: Option<AnalysisBranch>,
    #[serde(default)]
    pub quality_gate: Option<QualityGate>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AnalysisProject {
    pub key: String,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisBranch {
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QualityGate {
    #[serde(default)]
    pub name: Option<String>,
    pub status: String,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    pub metric: String,
    #[serde(default)]
    pub operator: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    pub status: String,
    #[serde(default)]
    pub error_threshold: Option<String>,
}

/// What an analysis was made of, which decides where its status goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// A pull-request analysis: the merge request with this iid.
    MergeRequest(i64),
    /// A branch analysis.
    Branch(&'a str),
    /// No branch in the payload (no branch support in SonarQube): the default branch.
    DefaultBranch,
}

impl Analysis {
    /// The merge request or branch analysed. A pull-request key names merge request `N`
    /// when it ends in the digits of `N` (`5`, `PR-5` and `!5` all name !5); a key that
    /// does not (`PR-abc`, or digits past what an iid can be) is an error, never a branch.
    pub fn subject(&self) -> Result<Subject<'_>, String> {
        let Some(branch) = self.branch.as_ref() else {
            return Ok(Subject::DefaultBranch);
        };
        if branch.kind.as_deref() != Some("PULL_REQUEST") {
            return Ok(Subject::Branch(&branch.name));
        }
        let key = branch.name.as_str();
        let start = key.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        match key[start..].parse::<i64>() {
            Ok(iid) if iid > 0 => Ok(Subject::MergeRequest(iid)),
            _ => Err(format!(
                "pull request key {:?} names no merge request: it must end in the merge \
                 request's iid, 1 to {} (sonar.pullrequest.key=<iid> or PR-<iid>)",
                key.chars().take(64).collect::<String>(),
                i64::MAX
            )),
        }
    }

    /// The merge request iid of a pull-request analysis with a valid key.
    pub fn merge_request_iid(&self) -> Option<i64> {
        match self.subject() {
            Ok(Subject::MergeRequest(iid)) => Some(iid),
            _ => None,
        }
    }

    /// When SonarQube made this analysis, in unix milliseconds: `analysedAt`, else
    /// `changedAt` (events from an issue change carry no analysis of their own).
    pub fn analysis_time_ms(&self) -> Option<i64> {
        let analysed = self.analysed_at.as_deref().and_then(time::unix_ms);
        analysed.or_else(|| self.changed_time_ms())
    }

    /// `changedAt` in unix milliseconds: what tells apart two events about one analysis
    /// (an issue marked false positive re-evaluates the gate later).
    pub fn changed_time_ms(&self) -> Option<i64> {
        self.changed_at.as_deref().and_then(time::unix_ms)
    }

    /// The dashboard of this analysis: the branch's URL, else the project's.
    pub fn dashboard(&self) -> String {
        let from_branch = self.branch.as_ref().and_then(|b| b.url.clone());
        let url = from_branch
            .or_else(|| self.project.url.clone())
            .unwrap_or_default();
        if url.starts_with("http://") || url.starts_with("https://") {
            url
        } else {
            String::new()
        }
    }
}

/// Security ratings as the summary shows them, by family-independent name.
const RATING_ALIASES: &[(&str, &[&str])] = &[
    (
        "new_security_rating",
        &[
            "new_security_rating",
            "new_software_quality_security_rating",
        ],
    ),
    (
        "security_rating",
        &["security_rating", "software_quality_security_rating"],
    ),
    (
        "new_security_review_rating",
        &["new_security_review_rating"],
    ),
    ("security_review_rating", &["security_review_rating"]),
    (
        "new_reliability_rating",
        &[
            "new_reliability_rating",
            "new_software_quality_reliability_rating",
        ],
    ),
    (
        "reliability_rating",
        &["reliability_rating", "software_quality_reliability_rating"],
    ),
    (
        "new_maintainability_rating",
        &[
            "new_maintainability_rating",
            "new_software_quality_maintainability_rating",
        ],
    ),
    (
        "sqale_rating",
        &["sqale_rating", "software_quality_maintainability_rating"],
    ),
];

/// `1` → `A` … `5` → `E` (values like `"1.0"` round).
pub fn rating_letter(value: &str) -> Option<char> {
    let number: f64 = value.trim().parse().ok()?;
    let rounded = number.round();
    (1.0..=5.0)
        .contains(&rounded)
        .then(|| (b'A' + (rounded as u8 - 1)) as char)
}

/// A human name for a metric key.
pub fn metric_label(metric: &str) -> String {
    let (new, base) = match metric.strip_prefix("new_") {
        Some(rest) => (true, rest),
        None => (false, metric),
    };
    let base = base.strip_prefix("software_quality_").unwrap_or(base);
    let words = base
        .replace("sqale_rating", "maintainability_rating")
        .replace('_', " ");
    if new {
        format!("{words} (new code)")
    } else {
        words
    }
}

/// What ci-bridge makes of a gate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluation {
    pub passed: bool,
    pub gate_name: Option<String>,
    pub gate_status: String,
    /// Rating metric (canonical name) → letter, for the ratings the analysis reported.
    pub ratings: BTreeMap<String, char>,
    /// One line per failing condition, SonarQube's and ci-bridge's own.
    pub failures: Vec<String>,
    /// Required ratings not met (`metric`, wanted letter, actual or `?`).
    pub below_required: Vec<(String, String, String)>,
    pub revision_given: bool,
    pub task_id: Option<String>,
    pub analysed_at: Option<String>,
}

/// Evaluates the gate and the project's required ratings.
pub fn evaluate(analysis: &Analysis, quality: &QualityConfig) -> Evaluation {
    let gate = analysis.quality_gate.as_ref();
    let conditions = gate.map(|g| g.conditions.as_slice()).unwrap_or(&[]);
    let value_of = |metric: &str| {
        conditions
            .iter()
            .find(|c| c.metric == metric)
            .and_then(|c| c.value.clone())
    };
    let mut ratings = BTreeMap::new();
    for (canonical, keys) in RATING_ALIASES {
        if let Some(letter) = keys
            .iter()
            .find_map(|k| value_of(k))
            .and_then(|v| rating_letter(&v))
        {
            ratings.insert((*canonical).to_owned(), letter);
        }
    }
    let mut failures: Vec<String> = conditions
        .iter()
        .filter(|c| c.status == "ERROR")
        .map(describe_condition)
        .collect();
    let gate_status = gate.map_or("NONE".to_owned(), |g| g.status.clone());
    if gate.is_none() {
        failures.push("no quality gate was evaluated".into());
    }
    let mut below_required = Vec::new();
    for (metric, wanted) in &quality.required_ratings {
        let canonical = canonical_rating(metric);
        let actual = ratings.get(&canonical).copied();
        let wanted_value = quality_rating_value(wanted).unwrap_or(1);
        let ok = actual.is_some_and(|a| (a as u8 - b'A' + 1) <= wanted_value);
        if !ok {
            let shown = actual.map_or("?".to_owned(), |a| a.to_string());
            failures.push(format!(
                "{} is {shown}, required {}",
                metric_label(metric),
                wanted.to_ascii_uppercase()
            ));
            below_required.push((metric.clone(), wanted.to_ascii_uppercase(), shown));
        }
    }
    let gate_ok = matches!(gate_status.as_str(), "OK" | "WARN");
    Evaluation {
        passed: gate_ok && failures.is_empty(),
        gate_name: gate.and_then(|g| g.name.clone()),
        gate_status,
        ratings,
        failures,
        below_required,
        revision_given: analysis.revision.is_some(),
        task_id: analysis.task_id.clone(),
        analysed_at: analysis.analysed_at.clone(),
    }
}

/// The canonical name of a rating key of either family.
fn canonical_rating(metric: &str) -> String {
    RATING_ALIASES
        .iter()
        .find(|(_, keys)| keys.contains(&metric))
        .map_or(metric.to_owned(), |(canonical, _)| (*canonical).to_owned())
}

fn describe_condition(condition: &Condition) -> String {
    let label = metric_label(&condition.metric);
    let is_rating = condition.metric.ends_with("_rating");
    let show = |v: &str| {
        if is_rating {
            rating_letter(v).map_or(v.to_owned(), |l| l.to_string())
        } else {
            v.to_owned()
        }
    };
    let value = condition
        .value
        .as_deref()
        .map_or("no value".to_owned(), show);
    let threshold = condition
        .error_threshold
        .as_deref()
        .map(show)
        .unwrap_or_default();
    let op = match condition.operator.as_deref() {
        Some("GREATER_THAN") if is_rating => "worse than",
        Some("GREATER_THAN") => ">",
        Some("LESS_THAN") => "<",
        Some(other) => other,
        None => "vs",
    };
    format!("{label} {value} ({op} {threshold})")
}

/// The status description: the verdict and the failing conditions, within GitLab's limit.
pub fn description(evaluation: &Evaluation, revision_note: Option<&str>) -> String {
    let mut text = if evaluation.passed {
        format!("quality gate passed ({})", evaluation.gate_status)
    } else if evaluation.failures.is_empty() {
        format!("quality gate {}", evaluation.gate_status)
    } else {
        format!("failed: {}", evaluation.failures.join("; "))
    };
    if let Some(note) = revision_note {
        text.push_str(" — ");
        text.push_str(note);
    }
    text
}

#[cfg(test)]
mod tests;
