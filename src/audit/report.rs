//! The compliance report: merges with their evidence, and every deviation, named as
//! GitLab's compliance report names them where the two overlap.

use serde::Serialize;
use serde_json::Value;

use super::chain::{self, ChainState};
use crate::store::{now_ms, EvidenceRow, GuardedPush, Store};

/// One deviation from the rules.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Deviation {
    /// Stable machine-readable name (GitLab's where it has one).
    pub code: &'static str,
    /// The name a reader sees.
    pub title: String,
    pub project: String,
    pub mr_iid: Option<i64>,
    pub sha: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MergeEntry {
    pub seq: i64,
    pub evidence: Value,
    pub deviations: Vec<Deviation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub generated_at: String,
    /// What the report covers, as asked (`7d`).
    pub since: String,
    /// The same, for a sentence: "the last 7d".
    pub period: String,
    /// The evidence chain as checked when the report was made; a broken chain means the
    /// merges below may not be what was recorded.
    pub chain: ChainState,
    pub merges: Vec<MergeEntry>,
    /// Pushes to guarded branches that no recorded merge explains.
    pub unexplained_pushes: Vec<Deviation>,
    pub deviation_count: usize,
}

impl Report {
    /// Every deviation, merges' first.
    pub fn deviations(&self) -> Vec<&Deviation> {
        self.merges
            .iter()
            .flat_map(|m| m.deviations.iter())
            .chain(self.unexplained_pushes.iter())
            .collect()
    }
}

/// Parses `7d`, `24h`, `2w` … into milliseconds.
pub fn parse_since(text: &str) -> Result<i64, String> {
    let text = text.trim();
    /// The longest window a report covers: ten years.
    const MAX_WINDOW_MS: u128 = 10 * 366 * 24 * 3600 * 1000;
    let weeks = text.strip_suffix('w').and_then(|n| n.parse::<u64>().ok());
    let duration = match weeks {
        Some(n) => n
            .checked_mul(7 * 24 * 3600)
            .map(std::time::Duration::from_secs)
            .ok_or_else(|| "since: too long".to_owned())?,
        None => humantime::parse_duration(text).map_err(|e| format!("since: {e}"))?,
    };
    if duration.as_millis() > MAX_WINDOW_MS {
        return Err("since: at most ten years".into());
    }
    Ok(duration.as_millis() as i64)
}

/// Builds the report of the last `window_ms`.
pub async fn build(store: &Store, window_ms: i64, since_text: &str) -> sqlx::Result<Report> {
    let since = now_ms() - window_ms;
    let rows = store.evidence(Some(since)).await?;
    let pushes = store.guarded_pushes_since(since).await?;
    let period = format!("the last {since_text}");
    assemble(store, rows, &pushes, since_text, &period).await
}

/// Builds the report of these evidence records and guarded pushes; `since_text` says
/// what time they cover.
pub async fn assemble(
    store: &Store,
    rows: Vec<EvidenceRow>,
    pushes: &[GuardedPush],
    since_text: &str,
    period: &str,
) -> sqlx::Result<Report> {
    let mut merges = Vec::new();
    for row in rows {
        let evidence: Value = serde_json::from_str(&row.record).unwrap_or(Value::Null);
        let deviations = deviations_of(&evidence);
        merges.push(MergeEntry {
            seq: row.seq,
            evidence,
            deviations,
        });
    }
    let mut unexplained_pushes = Vec::new();
    for push in pushes {
        if !store
            .merge_explains(&push.project_path, &push.after_sha)
            .await?
        {
            unexplained_pushes.push(Deviation {
                code: "push_without_merge_request",
                title: "Push to a protected branch without a merge request".into(),
                project: push.project_path.clone(),
                mr_iid: None,
                sha: Some(push.after_sha.clone()),
                detail: format!(
                    "{} pushed {} to {} at {}; no recorded merge has this commit",
                    push.username.as_deref().unwrap_or("someone"),
                    short(&push.after_sha),
                    push.branch,
                    rfc3339(push.pushed_at)
                ),
            });
        }
    }
    let deviation_count =
        merges.iter().map(|m| m.deviations.len()).sum::<usize>() + unexplained_pushes.len();
    Ok(Report {
        generated_at: rfc3339(now_ms()),
        since: since_text.to_owned(),
        period: period.to_owned(),
        chain: chain::check(store, &[]).await?,
        merges,
        unexplained_pushes,
        deviation_count,
    })
}

fn short(sha: &str) -> String {
    sha.chars().take(8).collect()
}

/// The deviations one evidence record shows.
pub fn deviations_of(e: &Value) -> Vec<Deviation> {
    let project = e["project"].as_str().unwrap_or("").to_owned();
    let mr_iid = e["mr_iid"].as_i64();
    let sha = e["head_sha"].as_str().map(str::to_owned);
    let mut out = Vec::new();
    let mut add = |code: &'static str, title: String, detail: String| {
        out.push(Deviation {
            code,
            title,
            project: project.clone(),
            mr_iid,
            sha: sha.clone(),
            detail,
        })
    };
    for conflict in e["four_eyes"]["conflicted"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let who = conflict[0]["username"].as_str().unwrap_or("?").to_owned();
        match conflict[1].as_str() {
            Some("author") => add(
                "approved_by_merge_request_author",
                "Approved by author".into(),
                format!("@{who} approved their own merge request"),
            ),
            _ => add(
                "approved_by_committer",
                "Approved by committer".into(),
                format!("@{who} approved a merge request they committed to"),
            ),
        }
    }
    let approvers: Vec<&Value> = e["approvers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["withdrawn_at"].is_null())
        .collect();
    let required = e["policy"]["required_approvals"].as_u64().unwrap_or(0) as usize;
    if approvers.len() < required {
        add(
            "approved_by_insufficient_users",
            format!("Fewer than {required} approvers"),
            format!("{} user(s) approved; {required} required", approvers.len()),
        );
    }
    let pipeline = &e["pipeline"];
    if pipeline.is_null() {
        add(
            "pipeline_missing",
            "Merged without a pipeline result".into(),
            "no build of the merged head".into(),
        );
    } else if pipeline["state"] != "finished" || pipeline["result"] != "SUCCESS" {
        let result = pipeline["result"].as_str().or(pipeline["state"].as_str());
        add(
            "pipeline_failed",
            "Merged with a failing pipeline".into(),
            format!("pipeline result {}", result.unwrap_or("unknown")),
        );
    }
    for (key, label, code_missing, code_failed) in [
        ("sast", "SAST", "sast_missing", "sast_failed"),
        (
            "quality_gate",
            "quality gate",
            "quality_gate_missing",
            "quality_gate_failed",
        ),
    ] {
        let result = &e[key];
        if result.is_null() {
            add(
                code_missing,
                format!("Merged without a {label} result"),
                "none received".into(),
            );
        } else if result["outcome"] != "success" {
            add(
                code_failed,
                format!("Merged with a failing {label}"),
                result["description"]
                    .as_str()
                    .unwrap_or("failed")
                    .to_owned(),
            );
        }
    }
    for below in e["quality_gate"]["summary"]["below_required"]
        .as_array()
        .into_iter()
        .flatten()
    {
        add(
            "security_rating_below_required",
            "Rating below the required one".into(),
            format!(
                "{} is {}, required {}",
                below[0].as_str().unwrap_or("?"),
                below[2].as_str().unwrap_or("?"),
                below[1].as_str().unwrap_or("?")
            ),
        );
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a unix time in ms (UTC).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_000_000_000), "2026-11-30T00:53:20Z");
        assert_eq!(parse_since("7d").unwrap(), 7 * 86_400_000);
        assert_eq!(parse_since("2w").unwrap(), 14 * 86_400_000);
    }

    #[test]
    fn a_self_approved_merge_without_results_shows_each_deviation() {
        let e = serde_json::json!({
            "project": "a/b", "mr_iid": 5, "head_sha": "abc",
            "four_eyes": {"conflicted": [[{"id": 7, "username": "ada"}, "author"]]},
            "approvers": [{"id": 7, "username": "ada", "withdrawn_at": null}],
            "policy": {"required_approvals": 2},
            "pipeline": {"state": "finished", "result": "FAILURE"},
            "sast": null, "quality_gate": {"outcome": "success", "summary": {"below_required": []}},
        });
        let codes: Vec<&str> = deviations_of(&e).iter().map(|d| d.code).collect();
        assert_eq!(
            codes,
            [
                "approved_by_merge_request_author",
                "approved_by_insufficient_users",
                "pipeline_failed",
                "sast_missing"
            ]
        );
    }
}
