//! The summary note: one note per merge request that sums up the pipeline, the quality
//! gate with its ratings, the SAST findings and the four-eyes state. The `mr_note` job
//! renders it from the database and edits it in place, found again by its id or by a
//! hidden marker; it is posted only when there is none. No line of it can start with `/`,
//! so no text in it (a title, a finding, a path) can run a GitLab quick action.

use sha2::{Digest, Sha256};

use super::{evidence, four_eyes, mr_check::MrPayload};
use crate::{
    sast::Summary as SastSummary,
    sonarqube::{metric_label, Evaluation},
    store::{now_ms, BuildResult, ClaimedJob, MergeRequestRow, QualityRow, QualitySource, UserRef},
    worker::{JobError, Outcome, Services},
};

/// The hidden marker that identifies ci-bridge's note.
pub const MARKER: &str = "<!-- ci-bridge:summary -->";

/// Everything the note shows.
pub struct NoteInput<'a> {
    pub mr: &'a MergeRequestRow,
    pub pipeline: Option<&'a BuildResult>,
    pub gate: Option<&'a QualityRow>,
    pub sast: Option<&'a QualityRow>,
    pub four_eyes: &'a four_eyes::FourEyes,
    pub four_eyes_status: &'a str,
}

/// Text from outside made safe for one table cell or list item.
fn cell(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('`', "'")
}

/// Escapes a `/` at the start of any line, so GitLab runs no quick action.
pub fn defuse_quick_actions(body: &str) -> String {
    body.lines()
        .map(|line| {
            let indent = line.len() - line.trim_start().len();
            if line[indent..].starts_with('/') {
                format!("{}\\{}", &line[..indent], &line[indent..])
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn icon(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "✅",
        Some(false) => "❌",
        None => "⏳",
    }
}

fn pipeline_line(build: Option<&BuildResult>) -> String {
    let Some(build) = build else {
        return format!("| Pipeline | {} no build yet |", icon(None));
    };
    let ok = match (build.state.as_str(), build.result.as_deref()) {
        ("finished", Some("SUCCESS")) => Some(true),
        ("finished" | "abandoned", _) => Some(false),
        _ => None,
    };
    let text = build
        .description
        .clone()
        .unwrap_or_else(|| build.state.clone());
    format!(
        "| Pipeline (`{}`) | {} {} |",
        cell(&build.status_name),
        icon(ok),
        cell(&text)
    )
}

fn quality_line(label: &str, row: Option<&QualityRow>) -> String {
    let Some(row) = row else {
        return format!("| {label} | {} no result yet |", icon(None));
    };
    let ok = row.outcome.as_deref().map(|o| o == "success");
    format!(
        "| {label} (`{}`) | {} {} |",
        cell(row.status_name.as_deref().unwrap_or("")),
        icon(ok),
        cell(row.description.as_deref().unwrap_or(""))
    )
}

/// Renders the note body.
pub fn render(input: &NoteInput<'_>) -> String {
    let mr = input.mr;
    let sha: String = mr
        .head_sha
        .as_deref()
        .unwrap_or("")
        .chars()
        .take(8)
        .collect();
    let mut out = vec![
        MARKER.to_owned(),
        format!("#### ci-bridge checks for `{sha}`"),
        String::new(),
        "| Check | Result |".into(),
        "|---|---|".into(),
        pipeline_line(input.pipeline),
        quality_line("Quality gate", input.gate),
        quality_line("SAST", input.sast),
        format!(
            "| Four eyes (`{}`) | {} {} |",
            cell(input.four_eyes_status),
            icon(Some(input.four_eyes.satisfied).filter(|s| *s)),
            cell(&input.four_eyes.description())
        ),
    ];
    if let Some(evaluation) = input
        .gate
        .and_then(|g| g.summary.clone())
        .and_then(|s| serde_json::from_value::<Evaluation>(s).ok())
    {
        gate_section(&mut out, input.gate, &evaluation);
    }
    if let Some(summary) = input
        .sast
        .and_then(|s| s.summary.clone())
        .and_then(|s| serde_json::from_value::<SastSummary>(s).ok())
    {
        sast_section(&mut out, &summary);
    }
    out.push(String::new());
    out.push("<sub>Kept up to date by ci-bridge; this note is edited in place.</sub>".into());
    defuse_quick_actions(&out.join("\n"))
}

fn gate_section(out: &mut Vec<String>, row: Option<&QualityRow>, evaluation: &Evaluation) {
    let dashboard = row
        .and_then(|r| r.target_url.clone())
        .filter(|u| !u.is_empty());
    out.push(String::new());
    let name = evaluation.gate_name.as_deref().unwrap_or("quality gate");
    let link = dashboard.map_or(String::new(), |u| format!(" · [dashboard]({})", cell(&u)));
    out.push(format!(
        "**Quality gate** {}: `{}`{link}",
        cell(name),
        cell(&evaluation.gate_status)
    ));
    if !evaluation.ratings.is_empty() {
        out.push(String::new());
        out.push("| Rating | Value |".into());
        out.push("|---|---|".into());
        for (metric, letter) in &evaluation.ratings {
            out.push(format!("| {} | {letter} |", cell(&metric_label(metric))));
        }
    }
    for failure in &evaluation.failures {
        out.push(format!("- ❌ {}", cell(failure)));
    }
}

fn sast_section(out: &mut Vec<String>, summary: &SastSummary) {
    out.push(String::new());
    let scanner = summary.scanner.as_deref().unwrap_or("unknown scanner");
    let status = summary.scan_status.as_deref().unwrap_or("unknown");
    out.push(format!(
        "**SAST findings** — {} (scan {}, report {})",
        cell(scanner),
        cell(status),
        cell(&summary.version)
    ));
    out.push(String::new());
    out.push("| Severity | Findings |".into());
    out.push("|---|---|".into());
    for severity in crate::config::Severity::REPORTED {
        let n = summary
            .by_severity
            .get(severity.label())
            .copied()
            .unwrap_or(0);
        out.push(format!("| {} | {n} |", severity.label()));
    }
    if !summary.top.is_empty() {
        out.push(String::new());
        out.push("Top findings:".into());
        for (index, finding) in summary.top.iter().enumerate() {
            let place = match (&finding.file, finding.line) {
                (Some(file), Some(line)) => format!(" · `{}:{line}`", cell(file)),
                (Some(file), None) => format!(" · `{}`", cell(file)),
                _ => String::new(),
            };
            let id = finding
                .identifier
                .as_deref()
                .map_or(String::new(), |i| format!(" · `{}`", cell(i)));
            let cwe = finding
                .cwe
                .as_deref()
                .map_or(String::new(), |c| format!(" · {}", cell(c)));
            out.push(format!(
                "{}. **{}** · {}{place}{id}{cwe}",
                index + 1,
                finding.severity.label(),
                cell(&finding.name)
            ));
        }
    }
}

/// How often the note looks again while the commit's build is still running, at most.
const MAX_REFRESH_MS: i64 = 5_000;

pub async fn run(services: &Services, job: &ClaimedJob) -> Result<Outcome, JobError> {
    let payload: MrPayload = serde_json::from_str(&job.payload)
        .map_err(|e| JobError::Invalid(format!("mr_note payload: {e}")))?;
    let store = &services.store;
    let mr = store.merge_request(payload.project_id, payload.iid).await?;
    let project = mr
        .as_ref()
        .and_then(|mr| services.config.project(&mr.project_path));
    let (Some(mr), Some(project)) = (mr, project) else {
        store.complete(job).await?;
        return Ok(Outcome::Done);
    };
    let finished = matches!(mr.state.as_deref(), Some("merged" | "closed"));
    // A merge request first seen merged or closed gets no note: nobody reads it there;
    // one that has a note keeps it up to date (the last pipeline result, say).
    if !project.quality.merge_request_checks || (finished && mr.note_id.is_none()) {
        store.complete(job).await?;
        return Ok(Outcome::Done);
    }
    let sha = mr.head_sha.clone().unwrap_or_default();
    let pipeline = store.latest_build_of(mr.source_project_id, &sha).await?;
    let gate = store
        .latest_quality(mr.source_project_id, &sha, QualitySource::SonarQube)
        .await?;
    let sast = store
        .latest_quality(mr.source_project_id, &sha, QualitySource::Sast)
        .await?;
    let people: Vec<four_eyes::CommitPerson> = mr
        .commit_authors
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let author = UserRef {
        id: mr.author_id.unwrap_or_default(),
        username: mr.author_username.clone(),
        name: mr.author_name.clone(),
    };
    let approvers = evidence::active_approvers(store, mr.project_id, mr.iid).await?;
    let state = four_eyes::evaluate(&author, &people, &approvers);
    let body = render(&NoteInput {
        mr: &mr,
        pipeline: pipeline.as_ref(),
        gate: gate.as_ref(),
        sast: sast.as_ref(),
        four_eyes: &state,
        four_eyes_status: &project.quality.four_eyes_status,
    });
    let hash = hex::encode(Sha256::digest(body.as_bytes()));
    if mr.note_hash.as_deref() != Some(hash.as_str()) || mr.note_id.is_none() {
        let started = std::time::Instant::now();
        let posted = upsert(services, &mr, &body).await;
        let elapsed = started.elapsed();
        services
            .metrics
            .outbound("gitlab", "note", posted.is_ok(), elapsed);
        let note_id = posted?;
        store
            .set_note(mr.project_id, mr.iid, note_id, &hash)
            .await?;
        tracing::info!(project = %mr.project_path, iid = mr.iid, note_id, "summary note updated");
    }
    if pipeline
        .as_ref()
        .is_some_and(|b| !matches!(b.state.as_str(), "finished" | "abandoned"))
    {
        let poll = services.config.jenkins.poll_interval.as_millis() as i64;
        return Ok(Outcome::Again(now_ms() + poll.min(MAX_REFRESH_MS)));
    }
    store.complete(job).await?;
    Ok(Outcome::Done)
}

/// Edits the note (by its stored id, else found by the marker among the bot's notes), or
/// posts it when there is none. Returns its id.
async fn upsert(services: &Services, mr: &MergeRequestRow, body: &str) -> Result<i64, JobError> {
    let gitlab = &services.gitlab;
    let mut note_id = mr.note_id;
    if note_id.is_none() {
        let bot = gitlab.current_user().await?;
        note_id = gitlab
            .find_note(mr.project_id, mr.iid, |n| {
                n.author.id == bot.id && n.body.contains(MARKER)
            })
            .await?
            .map(|n| n.id);
    }
    if let Some(id) = note_id {
        match gitlab.edit_note(mr.project_id, mr.iid, id, body).await {
            Ok(note) => return Ok(note.id),
            // Deleted by someone: post a new one.
            Err(error) if error.status() == Some(404) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(gitlab.create_note(mr.project_id, mr.iid, body).await?.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_line_of_the_note_can_start_a_quick_action() {
        let mr = MergeRequestRow {
            head_sha: Some("abc".into()),
            ..MergeRequestRow::default()
        };
        let state = four_eyes::evaluate(&UserRef::default(), &[], &[]);
        let body = render(&NoteInput {
            mr: &mr,
            pipeline: None,
            gate: None,
            sast: None,
            four_eyes: &state,
            four_eyes_status: "four-eyes",
        });
        assert!(body.starts_with(MARKER));
        assert_eq!(
            defuse_quick_actions("ok\n/merge\n  /close"),
            "ok\n\\/merge\n  \\/close"
        );
        assert!(body.lines().all(|l| !l.trim_start().starts_with('/')));
    }
}
