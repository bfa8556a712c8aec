//! GitLab SAST reports (`gl-sast-report.json`, schemas 14 and 15) sent by Jenkins jobs:
//! what ci-bridge reads of them, and their summary by severity and scanner.
//!
//! GitLab only ingests such a report from its own CI, so for a Jenkins build ci-bridge
//! keeps it, sums it up in a commit status and the merge request note, and shows it to
//! auditors.
//!
//! A build may send several reports, one per analyzer as GitLab's own pipelines make them
//! (semgrep, then a secrets scanner). They are summed up together: the latest report of
//! each scanner counts, findings are counted once per `id` across them, and the build
//! fails when any of them failed or found something at or above the threshold.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::config::Severity;

#[derive(Debug, Clone, Deserialize)]
pub struct Report {
    pub version: String,
    pub vulnerabilities: Vec<Vulnerability>,
    #[serde(default)]
    pub scan: Option<Scan>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Scan {
    #[serde(default)]
    pub analyzer: Option<Tool>,
    #[serde(default)]
    pub scanner: Option<Tool>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Tool {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Vulnerability {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// Schema 14's title, when there is no `name`.
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub scanner: Option<Tool>,
    #[serde(default)]
    pub location: Location,
    #[serde(default)]
    pub identifiers: Vec<Identifier>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Location {
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub start_line: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Identifier {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

/// Why a body is not a SAST report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("not a SAST report: {0}")]
    Shape(String),
    #[error("unsupported SAST report version {0} (14.x and 15.x are read)")]
    Version(String),
}

/// Parses and checks a report.
pub fn parse(body: &[u8]) -> Result<Report, ReportError> {
    let report: Report =
        serde_json::from_slice(body).map_err(|e| ReportError::Shape(e.to_string()))?;
    let major = report.version.split('.').next().unwrap_or("");
    if !matches!(major, "14" | "15") {
        return Err(ReportError::Version(
            report.version.chars().take(20).collect(),
        ));
    }
    Ok(report)
}

/// One finding as the note lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub name: String,
    pub file: Option<String>,
    pub line: Option<i64>,
    pub identifier: Option<String>,
    pub cwe: Option<String>,
}

/// The summary kept with the result and shown in the note and the evidence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub version: String,
    /// Severity label → count, every severity present.
    pub by_severity: BTreeMap<String, usize>,
    pub by_scanner: BTreeMap<String, usize>,
    pub total: usize,
    pub analyzer: Option<String>,
    pub scanner: Option<String>,
    pub scan_status: Option<String>,
    pub end_time: Option<String>,
    /// The most severe findings first.
    pub top: Vec<Finding>,
    pub passed: bool,
    pub fail_at: Severity,
    /// The reports summed up, one per scanner (results kept before reports were combined
    /// have none).
    #[serde(default)]
    pub reports: Vec<ReportPart>,
}

fn tool_name(tool: Option<&Tool>) -> Option<String> {
    let tool = tool?;
    let name = tool.name.clone().or_else(|| tool.id.clone())?;
    Some(match &tool.version {
        Some(version) => format!("{name} {version}"),
        None => name,
    })
}

/// One report among those a build's summary combines.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReportPart {
    /// What tells this scanner's reports apart ([`scanner_key`]).
    pub scanner: String,
    pub scan_status: Option<String>,
    /// Its findings, before they are deduplicated against the other reports.
    pub findings: usize,
}

/// The scanner a report comes from, which tells a build's reports apart: the ids of
/// `scan.analyzer` and `scan.scanner` (one when they agree), else the scanners its
/// findings name (schema 14), else `unknown`.
pub fn scanner_key(report: &Report) -> String {
    let id = |tool: Option<&Tool>| tool.and_then(|t| t.id.clone().or_else(|| t.name.clone()));
    let scan = report.scan.as_ref();
    let analyzer = id(scan.and_then(|s| s.analyzer.as_ref()));
    let scanner = id(scan.and_then(|s| s.scanner.as_ref()));
    match (analyzer, scanner) {
        (Some(a), Some(s)) if a == s => a,
        (Some(a), Some(s)) => format!("{a}/{s}"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => {
            let mut ids: Vec<String> = report
                .vulnerabilities
                .iter()
                .filter_map(|v| id(v.scanner.as_ref()))
                .collect();
            ids.sort();
            ids.dedup();
            if ids.is_empty() {
                "unknown".into()
            } else {
                ids.join("+")
            }
        }
    }
}

/// Sums a report up; `fail_at` is the lowest severity that fails, `top` how many findings
/// are kept by name. Findings are deduplicated by `id`.
pub fn summarize(report: &Report, fail_at: Severity, top: usize) -> Summary {
    summarize_all(&[report], fail_at, top)
}

/// Sums up the reports of one build as one, oldest first; of several reports from one
/// scanner only the last counts (in the place of its first). Findings are deduplicated by `id` across all of them.
pub fn summarize_all(reports: &[&Report], fail_at: Severity, top: usize) -> Summary {
    let mut latest: Vec<(String, &Report)> = Vec::new();
    for report in reports {
        let key = scanner_key(report);
        match latest.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = report,
            None => latest.push((key, report)),
        }
    }

    let mut seen = HashSet::new();
    let mut findings = Vec::new();
    let mut by_scanner = BTreeMap::new();
    let mut parts = Vec::new();
    for (key, report) in &latest {
        let default_scanner = report
            .scan
            .as_ref()
            .and_then(|s| s.scanner.as_ref())
            .and_then(|t| t.name.clone().or_else(|| t.id.clone()));
        for v in &report.vulnerabilities {
            let primary = v.identifiers.first().and_then(|i| i.value.clone());
            let dedup = v.id.clone().unwrap_or_else(|| {
                format!(
                    "{primary:?}|{:?}|{:?}",
                    v.location.file, v.location.start_line
                )
            });
            if !seen.insert(dedup) {
                continue;
            }
            let scanner = v
                .scanner
                .as_ref()
                .and_then(|t| t.name.clone().or_else(|| t.id.clone()))
                .or_else(|| default_scanner.clone())
                .unwrap_or_else(|| "unknown".into());
            *by_scanner.entry(scanner).or_insert(0) += 1;
            findings.push(finding(v, primary));
        }
        parts.push(ReportPart {
            scanner: key.clone(),
            scan_status: report.scan.as_ref().and_then(|s| s.status.clone()),
            findings: report.vulnerabilities.len(),
        });
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));

    let mut by_severity = BTreeMap::new();
    for severity in Severity::REPORTED {
        let count = findings.iter().filter(|f| f.severity == severity).count();
        by_severity.insert(severity.label().to_owned(), count);
    }
    let scans: Vec<Option<&Scan>> = latest.iter().map(|(_, r)| r.scan.as_ref()).collect();
    let statuses: Vec<Option<&str>> = parts.iter().map(|p| p.scan_status.as_deref()).collect();
    let scan_status = if statuses.contains(&Some("failure")) {
        Some("failure".to_owned())
    } else if !statuses.is_empty() && statuses.iter().all(|s| *s == Some("success")) {
        Some("success".to_owned())
    } else {
        statuses.iter().flatten().next().map(|s| (*s).to_owned())
    };
    let failing = fail_at != Severity::Never && findings.iter().any(|f| f.severity >= fail_at);
    let scan_failed = scan_status.as_deref() == Some("failure");
    let versions = joined(latest.iter().map(|(_, r)| Some(r.version.clone())));
    Summary {
        version: versions.unwrap_or_default(),
        by_severity,
        by_scanner,
        total: findings.len(),
        analyzer: joined(
            scans
                .iter()
                .map(|s| tool_name(s.and_then(|s| s.analyzer.as_ref()))),
        ),
        scanner: joined(
            scans
                .iter()
                .map(|s| tool_name(s.and_then(|s| s.scanner.as_ref()))),
        ),
        scan_status,
        end_time: scans.iter().filter_map(|s| (*s)?.end_time.clone()).max(),
        top: findings.into_iter().take(top).collect(),
        passed: !failing && !scan_failed,
        fail_at,
        reports: parts,
    }
}

fn finding(v: &Vulnerability, primary: Option<String>) -> Finding {
    let cwe = v
        .identifiers
        .iter()
        .find(|i| i.kind.as_deref() == Some("cwe"))
        .and_then(|i| i.name.clone().or_else(|| i.value.clone()));
    Finding {
        severity: Severity::from_report(v.severity.as_deref()),
        name: v
            .name
            .clone()
            .or_else(|| v.message.clone())
            .or_else(|| primary.clone())
            .unwrap_or_else(|| "unnamed finding".into()),
        file: v.location.file.clone(),
        line: v.location.start_line.filter(|l| *l > 0),
        identifier: primary,
        cwe,
    }
}

/// The distinct values, in order, joined with `, `; `None` when there are none.
fn joined(values: impl Iterator<Item = Option<String>>) -> Option<String> {
    let mut distinct: Vec<String> = Vec::new();
    for value in values.flatten() {
        if !distinct.contains(&value) {
            distinct.push(value);
        }
    }
    (!distinct.is_empty()).then(|| distinct.join(", "))
}

impl Summary {
    /// `2 High, 4 Medium`, or `no findings`.
    pub fn counts(&self) -> String {
        let parts: Vec<String> = Severity::REPORTED
            .iter()
            .filter_map(|s| {
                let n = *self.by_severity.get(s.label()).unwrap_or(&0);
                (n > 0).then(|| format!("{n} {}", s.label()))
            })
            .collect();
        if parts.is_empty() {
            "no findings".into()
        } else {
            parts.join(", ")
        }
    }

    /// The status description; with several reports, the scanners follow the counts
    /// (and a failed scan names its scanners).
    pub fn description(&self) -> String {
        let failed_scans: Vec<&str> = self
            .reports
            .iter()
            .filter(|p| p.scan_status.as_deref() == Some("failure"))
            .map(|p| p.scanner.as_str())
            .collect();
        let several = self.reports.len() > 1;
        let verdict = if self.scan_status.as_deref() == Some("failure") {
            if several {
                format!("scan failed ({})", failed_scans.join(", "))
            } else {
                "scan failed".to_owned()
            }
        } else if self.passed {
            "passed".to_owned()
        } else {
            format!("failed: findings at or above {}", self.fail_at.label())
        };
        let mut text = format!("{verdict} — {}", self.counts());
        if several {
            let scanners: Vec<&str> = self.reports.iter().map(|p| p.scanner.as_str()).collect();
            text.push_str(&format!(
                " · {} scanners: {}",
                scanners.len(),
                scanners.join(", ")
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = r#"{"version":"15.0.7","scan":{"status":"success","type":"sast",
      "scanner":{"id":"semgrep","name":"Semgrep","version":"1.0"},
      "analyzer":{"id":"semgrep","name":"Semgrep analyzer","version":"5.0"}},
      "vulnerabilities":[
        {"id":"a","name":"SQL injection","severity":"High",
         "location":{"file":"src/db.rs","start_line":7},
         "identifiers":[{"type":"semgrep_id","name":"sqli","value":"sqli"},
                        {"type":"cwe","name":"CWE-89","value":"89"}]},
        {"id":"a","name":"SQL injection","severity":"High",
         "location":{"file":"src/db.rs","start_line":7},
         "identifiers":[{"type":"semgrep_id","name":"sqli","value":"sqli"}]},
        {"id":"b","name":"Weak hash","severity":"Low",
         "location":{"file":"src/h.rs","start_line":3},
         "identifiers":[{"type":"semgrep_id","name":"md5","value":"md5"}]},
        {"id":"c","name":"Odd","location":{},
         "identifiers":[{"type":"x","name":"x","value":"x"}]}]}"#;

    #[test]
    fn findings_are_counted_once_by_severity_and_fail_at_the_threshold() {
        let report = parse(REPORT.as_bytes()).unwrap();
        let summary = summarize(&report, Severity::High, 5);
        assert_eq!(summary.total, 3);
        assert_eq!(summary.counts(), "1 High, 1 Low, 1 Unknown");
        assert!(!summary.passed);
        assert_eq!(summary.top[0].file.as_deref(), Some("src/db.rs"));
        assert_eq!(summary.top[0].cwe.as_deref(), Some("CWE-89"));
        assert!(summarize(&report, Severity::Critical, 5).passed);
        assert!(summarize(&report, Severity::Never, 5).passed);
    }

    fn scanner_report(scanner: &str, status: &str, findings: &str) -> Report {
        let body = format!(
            r#"{{"version":"15.0.7","scan":{{"status":"{status}","type":"sast",
              "scanner":{{"id":"{scanner}","name":"{scanner}","version":"1"}},
              "analyzer":{{"id":"{scanner}","name":"{scanner}","version":"1"}}}},
              "vulnerabilities":[{findings}]}}"#
        );
        parse(body.as_bytes()).unwrap()
    }

    const HIGH_A: &str = r#"{"id":"a","name":"SQLi","severity":"High","location":{},
        "identifiers":[{"type":"x","name":"x","value":"x"}]}"#;
    const LOW_B: &str = r#"{"id":"b","name":"Key","severity":"Low","location":{},
        "identifiers":[{"type":"x","name":"y","value":"y"}]}"#;

    #[test]
    fn reports_of_one_build_combine_and_a_failed_scan_fails_them_all() {
        let semgrep = scanner_report("semgrep", "failure", LOW_B);
        let secrets = scanner_report("gitleaks", "success", &format!("{LOW_B},{HIGH_A}"));
        let summary = summarize_all(&[&semgrep, &secrets], Severity::Critical, 5);
        assert!(!summary.passed, "the failed scan fails the build");
        assert_eq!(summary.total, 2, "b is counted once");
        assert_eq!(
            summary.description(),
            "scan failed (semgrep) — 1 High, 1 Low · 2 scanners: semgrep, gitleaks"
        );

        let semgrep_again = scanner_report("semgrep", "success", "");
        let summary = summarize_all(&[&semgrep, &secrets, &semgrep_again], Severity::Critical, 5);
        assert!(summary.passed, "the re-sent report replaced only semgrep's");
        assert_eq!(summary.counts(), "1 High, 1 Low");
        assert_eq!(summary.reports.len(), 2);
    }

    #[test]
    fn other_report_versions_are_refused() {
        assert!(parse(br#"{"version":"2.0","vulnerabilities":[]}"#).is_err());
        assert!(parse(b"[]").is_err());
    }
}
