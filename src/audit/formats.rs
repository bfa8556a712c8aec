//! The compliance report as Markdown (for an auditor), JSON (for tools) and CSV (for a
//! spreadsheet), and the deviation message posted by the scheduled check.

use serde_json::{json, Value};

use super::{
    chain::ChainState,
    report::{rfc3339, Deviation, Report},
};

/// Output formats of `ci-bridge report` and `GET /api/v1/compliance/report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Json,
    Csv,
}

impl Format {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "markdown" | "md" => Some(Self::Markdown),
            "json" => Some(Self::Json),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Markdown => "text/markdown; charset=utf-8",
            Self::Json => "application/json",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }
}

pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(report).unwrap_or_default(),
        Format::Csv => csv(report),
        Format::Markdown => markdown(report),
    }
}

fn user(v: &Value) -> String {
    v["username"]
        .as_str()
        .map(|u| format!("@{u}"))
        .or_else(|| v["name"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

fn approvers(e: &Value) -> String {
    let list: Vec<String> = e["approvers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["withdrawn_at"].is_null())
        .map(user)
        .collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(" ")
    }
}

fn result_of(v: &Value) -> String {
    if v.is_null() {
        return "missing".into();
    }
    v["outcome"]
        .as_str()
        .or(v["result"].as_str())
        .or(v["state"].as_str())
        .unwrap_or("unknown")
        .to_owned()
}

fn md(text: &str) -> String {
    text.replace(['\n', '\r'], " ").replace('|', "\\|")
}

/// The chain's line in the Markdown report: a broken chain first and loudly.
fn chain_line(chain: &ChainState) -> String {
    if chain.intact {
        format!(
            "Evidence chain intact ({} record(s)); head `{}` — keep it to check later \
             with `ci-bridge audit verify --anchor`.",
            chain.records,
            chain
                .head
                .as_ref()
                .map_or_else(|| "none".to_owned(), ToString::to_string)
        )
    } else {
        format!(
            "> **Warning: {}.** The merges below may not be what was recorded.",
            chain.summary()
        )
    }
}

fn markdown(report: &Report) -> String {
    let mut out = vec![
        "# ci-bridge compliance report".to_owned(),
        String::new(),
        format!(
            "Generated {} · period: {}",
            report.generated_at, report.period
        ),
        String::new(),
        chain_line(&report.chain),
        String::new(),
        format!(
            "**{} merge(s), {} deviation(s).** Evidence records are hash-chained; \
             `ci-bridge audit verify` checks the chain.",
            report.merges.len(),
            report.deviation_count
        ),
        String::new(),
        "## Merges".into(),
        String::new(),
    ];
    if report.merges.is_empty() {
        out.push("No merge in this period.".into());
    } else {
        out.push("| # | Merged | Project | MR | Title | Author | Approvers | Merged by | Pipeline | Quality gate | SAST | Deviations |".into());
        out.push("|---|---|---|---|---|---|---|---|---|---|---|---|".into());
        for m in &report.merges {
            let e = &m.evidence;
            out.push(format!(
                "| {} | {} | {} | !{} | {} | {} | {} | {} | {} | {} | {} | {} |",
                m.seq,
                rfc3339(e["merged_at"].as_i64().unwrap_or(0)),
                md(e["project"].as_str().unwrap_or("")),
                e["mr_iid"],
                md(e["title"].as_str().unwrap_or("")),
                user(&e["author"]),
                approvers(e),
                user(&e["merged_by"]),
                result_of(&e["pipeline"]),
                result_of(&e["quality_gate"]),
                result_of(&e["sast"]),
                m.deviations.len()
            ));
        }
    }
    out.push(String::new());
    out.push("## Deviations".into());
    out.push(String::new());
    let all = report.deviations();
    if all.is_empty() {
        out.push("None.".into());
    }
    for d in all {
        out.push(format!(
            "- **{}** — {}: {}",
            md(&d.title),
            place(d),
            md(&d.detail)
        ));
    }
    out.push(String::new());
    out.join("\n")
}

fn place(d: &Deviation) -> String {
    match (d.mr_iid, &d.sha) {
        (Some(iid), _) => format!("{} !{iid}", d.project),
        (None, Some(sha)) => format!("{} {}", d.project, sha.chars().take(8).collect::<String>()),
        _ => d.project.clone(),
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn csv(report: &Report) -> String {
    let mut out = vec!["kind,merged_at,project,mr_iid,title,author,approvers,merged_by,merge_commit_sha,head_sha,pipeline,quality_gate,sast,deviations".to_owned()];
    for m in &report.merges {
        let e = &m.evidence;
        let codes: Vec<&str> = m.deviations.iter().map(|d| d.code).collect();
        let fields = [
            "merge".to_owned(),
            rfc3339(e["merged_at"].as_i64().unwrap_or(0)),
            e["project"].as_str().unwrap_or("").to_owned(),
            e["mr_iid"].to_string(),
            e["title"].as_str().unwrap_or("").to_owned(),
            user(&e["author"]),
            approvers(e),
            user(&e["merged_by"]),
            e["merge_commit_sha"].as_str().unwrap_or("").to_owned(),
            e["head_sha"].as_str().unwrap_or("").to_owned(),
            result_of(&e["pipeline"]),
            result_of(&e["quality_gate"]),
            result_of(&e["sast"]),
            codes.join(" "),
        ];
        out.push(
            fields
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    for d in &report.unexplained_pushes {
        let fields = [
            "push",
            "",
            &d.project,
            "",
            &d.detail,
            "",
            "",
            "",
            "",
            d.sha.as_deref().unwrap_or(""),
            "",
            "",
            "",
            d.code,
        ];
        out.push(
            fields
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    out.push(String::new());
    out.join("\n")
}

/// The body the scheduled check posts: JSON with a `text` field (what Slack and
/// Mattermost incoming webhooks display) and the deviations themselves.
pub fn webhook_message(report: &Report) -> Value {
    let deviations = report.deviations();
    let mut text = format!(
        "ci-bridge compliance check ({}): {} merge(s), {} deviation(s) in {}",
        report.generated_at,
        report.merges.len(),
        deviations.len(),
        report.period
    );
    for d in deviations.iter().take(50) {
        text.push_str(&format!("\n• {} — {}: {}", d.title, place(d), d.detail));
    }
    if deviations.len() > 50 {
        text.push_str(&format!(
            "\n… and {} more: `ci-bridge report` lists them all",
            deviations.len() - 50
        ));
    }
    // The head leaves the database with the message: kept there, it lets
    // `audit verify --anchor` notice a later rewrite or removal.
    text.push_str(&format!("\n{}", report.chain.summary()));
    json!({
        "text": text,
        "generated_at": report.generated_at,
        "since": report.since,
        "merges": report.merges.len(),
        "deviations": deviations,
        "chain": report.chain,
    })
}
