//! The `quality_result` job: a stored SonarQube analysis or SAST report becomes a commit
//! status on the commit it was made for, and the merge request notes showing that commit
//! are refreshed.

use sqlx::{Any, Transaction};

use super::{mr_note_job, report::rfc3339, status};
use crate::{
    config::ProjectConfig,
    gitlab::client::{truncate_chars, MAX_STATUS_TEXT_CHARS},
    jenkins::job_path::job_url,
    outbound::CallError,
    sast,
    sonarqube::{self, Subject},
    store::{
        audit_tx::resolve_in, ClaimedJob, QualityRow, QualitySource, Resolution, StatusKey,
        StatusStage, Store,
    },
    worker::{JobError, Outcome, Services},
};

#[derive(serde::Deserialize)]
struct Payload {
    result_id: String,
}

/// A result that cannot be tied to a commit; kept with this reason.
type Unresolved = String;

pub async fn run(services: &Services, job: &ClaimedJob) -> Result<Outcome, JobError> {
    let payload: Payload = serde_json::from_str(&job.payload)
        .map_err(|e| JobError::Invalid(format!("quality payload: {e}")))?;
    let store = &services.store;
    let Some((row, body)) = store.quality_result(&payload.result_id).await? else {
        return Err(JobError::Invalid(format!(
            "result {} is not stored",
            payload.result_id
        )));
    };
    if row.outcome.is_some() {
        store.complete(job).await?;
        return Ok(Outcome::Done);
    }
    let (source, resolved) = match row.source.as_str() {
        "sonarqube" => (
            QualitySource::SonarQube,
            sonar(services, &row, &body).await?,
        ),
        "sast" => (
            QualitySource::Sast,
            sast_report(services, &row, &body).await?,
        ),
        other => (QualitySource::Sast, Err(format!("unknown source {other}"))),
    };

    let mut tx = store.begin().await?;
    let applied = match resolved {
        Ok(res) => apply(services, &mut tx, &row, source, res).await?,
        Err(reason) => {
            resolve_in(&mut tx, &row.id, None, &reason).await?;
            tracing::warn!(result = %row.id, %reason, "quality result matches no commit");
            None
        }
    };
    Store::complete_in(&mut tx, job).await?;
    tx.commit().await?;
    store.wake_workers();

    if let Some(res) = &applied {
        refresh_notes(services, res).await?;
    }
    Ok(Outcome::Done)
}

/// Records what a result resolved to and, unless a newer analysis already decides the
/// status, applies it. Returns the resolution when the status now shows it.
///
/// Results of one status are decided one at a time (under its lock), so that two
/// deliveries processed at once cannot leave the older one on GitLab.
async fn apply(
    services: &Services,
    tx: &mut Transaction<'_, Any>,
    row: &QualityRow,
    source: QualitySource,
    mut res: Resolution,
) -> Result<Option<Resolution>, JobError> {
    let key = StatusKey {
        project_id: res.gitlab_project_id,
        sha: res.sha.clone(),
        name: res.status_name.clone(),
    };
    Store::lock_quality_status_in(tx, &key, source).await?;
    // The first write of the transaction: on SQLite, what follows reads the latest data.
    resolve_in(tx, &row.id, Some(&res), "").await?;

    let decision = match source {
        QualitySource::SonarQube => {
            let newest = Store::newest_applied_in(tx, &key, source).await?;
            let newer = newest
                .filter(|n| is_older(res.analysed_ms, res.changed_ms, n.analysed_ms, n.changed_ms));
            match newer {
                Some(newer) => {
                    let decision = format!(
                        "not applied: analysed at {}, before result {} (analysed at {}) that \
                         the status already shows; delivered out of order",
                        shown_time(res.analysed_ms),
                        newer.id,
                        shown_time(newer.analysed_ms)
                    );
                    Store::mark_superseded_in(tx, &row.id, &decision).await?;
                    tracing::info!(result = %row.id, sha = %res.sha, name = %res.status_name,
                        newer = %newer.id, analysed_at = %shown_time(res.analysed_ms),
                        "sonarqube analysis older than the one the status shows; not applied");
                    return Ok(None);
                }
                None => match res.analysed_ms {
                    Some(ms) => format!("applied: analysed at {}", rfc3339(ms)),
                    None => "applied: the analysis carries no time, so the latest received \
                             applies"
                        .to_owned(),
                },
            }
        }
        QualitySource::Sast => {
            let decision = combine_build_reports(services, tx, row, &mut res).await?;
            resolve_in(tx, &row.id, Some(&res), "").await?;
            decision
        }
    };

    res.description = truncate_chars(&res.description, MAX_STATUS_TEXT_CHARS).into_owned();
    let state = if res.outcome == "success" {
        "success"
    } else {
        "failed"
    };
    // The same verdict again (another report adding nothing new) is not posted again.
    if !Store::status_shows_in(tx, &key, state, &res.description, &res.target_url).await? {
        let stage = StatusStage::Final {
            state,
            description: res.description.clone(),
            url: res.target_url.clone(),
        };
        let generation = format!("quality:{}", row.id);
        status::set(tx, &key, &res.git_ref, &generation, &stage).await?;
    }
    Store::mark_applied_in(tx, &row.id, &key, source, &decision).await?;
    tracing::info!(result = %row.id, sha = %res.sha, name = %res.status_name,
        outcome = %res.outcome, %decision, "quality result resolved");
    Ok(Some(res))
}

/// True when an analysis made at `mine` (changed at `mine_changed`) is strictly older than
/// one made at `theirs`: by analysis time, then `changedAt`. An analysis without a time is
/// never held back, as there is nothing to order it by.
fn is_older(
    mine: Option<i64>,
    mine_changed: Option<i64>,
    theirs: Option<i64>,
    theirs_changed: Option<i64>,
) -> bool {
    let order = |at: i64, changed: Option<i64>| (at, changed.unwrap_or(i64::MIN));
    match (mine, theirs) {
        (Some(mine), Some(theirs)) => order(theirs, theirs_changed) > order(mine, mine_changed),
        _ => false,
    }
}

fn shown_time(ms: Option<i64>) -> String {
    ms.map_or_else(|| "an unknown time".to_owned(), rfc3339)
}

/// Replaces the summary, outcome and description of `res` (one SAST report) with those of
/// every report of its build combined, the latest per scanner. Returns the decision.
async fn combine_build_reports(
    services: &Services,
    tx: &mut Transaction<'_, Any>,
    row: &QualityRow,
    res: &mut Resolution,
) -> Result<String, JobError> {
    let build_id = row.build_id.as_deref().unwrap_or_default();
    let stored = Store::build_reports_in(tx, build_id).await?;
    let parsed: Vec<(String, sast::Report)> = stored
        .into_iter()
        .filter_map(|r| sast::parse(&r.body).ok().map(|report| (r.id, report)))
        .collect();
    let own_key = parsed
        .iter()
        .find(|(id, _)| *id == row.id)
        .map(|(_, report)| sast::scanner_key(report))
        .unwrap_or_default();
    let replaced_by = parsed
        .iter()
        .rev()
        .find(|(_, report)| sast::scanner_key(report) == own_key)
        .map(|(id, _)| id.clone())
        .filter(|id| *id != row.id);

    let quality = services
        .config
        .project(&res.project_path)
        .map(|p| p.quality.clone())
        .unwrap_or_default();
    let reports: Vec<&sast::Report> = parsed.iter().map(|(_, report)| report).collect();
    let summary = sast::summarize_all(&reports, quality.sast_fail_at, quality.note_top_findings);
    res.outcome = if summary.passed { "success" } else { "failed" }.into();
    res.description = summary.description();
    res.summary = serde_json::to_value(&summary).unwrap_or_default();

    let scanners: Vec<&str> = summary.reports.iter().map(|p| p.scanner.as_str()).collect();
    let mut decision = format!(
        "applied: build {build_id} combined, {} report(s) by scanner ({})",
        scanners.len(),
        scanners.join(", ")
    );
    if let Some(newer) = replaced_by {
        decision.push_str(&format!(
            "; this {own_key} report is replaced by the later result {newer}"
        ));
    }
    Ok(decision)
}

/// Queues the note of every open merge request at the result's commit (the note job
/// skips projects without `merge_request_checks`).
async fn refresh_notes(services: &Services, res: &Resolution) -> Result<(), JobError> {
    let store = &services.store;
    let mut jobs: Vec<_> = store
        .merge_requests_at(&res.sha)
        .await?
        .into_iter()
        .map(|(project_id, iid)| mr_note_job(project_id, iid))
        .collect();
    jobs.dedup_by(|a, b| a.unique_key == b.unique_key);
    if !jobs.is_empty() {
        store.enqueue(&jobs).await?;
    }
    Ok(())
}

fn project_of<'a>(
    services: &'a Services,
    row: &QualityRow,
) -> Result<&'a ProjectConfig, Unresolved> {
    let path = row.project_path.as_deref().unwrap_or("");
    services
        .config
        .project(path)
        .ok_or_else(|| format!("project {path} is no longer configured"))
}

/// A permanent GitLab failure is a reason to give up on the lookup; a transient one
/// fails the job so that it is retried.
fn lookup<T>(answer: Result<T, CallError>) -> Result<Option<T>, JobError> {
    match answer {
        Ok(value) => Ok(Some(value)),
        Err(error) if error.is_transient() => Err(error.into()),
        Err(error) => {
            tracing::warn!(%error, "GitLab lookup failed");
            Ok(None)
        }
    }
}

/// `(GitLab project id, latest built sha, ref)` of what an analysis was made of, if
/// ci-bridge or GitLab knows it.
async fn locate(
    services: &Services,
    path: &str,
    subject: Subject<'_>,
) -> Result<Option<(i64, Option<String>, String)>, JobError> {
    let store = &services.store;
    let branch = match subject {
        Subject::MergeRequest(iid) => {
            if let Some(mr) = store.merge_request_by_path(path, iid).await? {
                return Ok(Some((mr.source_project_id, mr.head_sha, mr.source_branch)));
            }
            if let Some((id, sha, git_ref)) = store.latest_built_sha(path, None, Some(iid)).await? {
                return Ok(Some((id, Some(sha), git_ref)));
            }
            let mr = lookup(services.gitlab.merge_request(path, iid).await)?;
            return Ok(mr.map(|mr| (mr.source_project_id, mr.sha, mr.source_branch)));
        }
        Subject::Branch(branch) => branch.to_owned(),
        Subject::DefaultBranch => {
            let project = lookup(services.gitlab.project(path).await)?;
            match project.and_then(|p| p.default_branch) {
                Some(branch) => branch,
                None => return Ok(None),
            }
        }
    };
    let built = store.latest_built_sha(path, Some(&branch), None).await?;
    let project_id = match &built {
        Some((id, _, _)) => Some(*id),
        None => match store.project_id_for_path(path).await? {
            Some(id) => Some(id),
            None => lookup(services.gitlab.project(path).await)?.map(|p| p.id),
        },
    };
    Ok(project_id.map(|id| (id, built.map(|b| b.1), branch)))
}

async fn sonar(
    services: &Services,
    row: &QualityRow,
    body: &[u8],
) -> Result<Result<Resolution, Unresolved>, JobError> {
    let project = match project_of(services, row) {
        Ok(project) => project,
        Err(reason) => return Ok(Err(reason)),
    };
    let analysis: sonarqube::Analysis = match serde_json::from_slice(body) {
        Ok(analysis) => analysis,
        Err(e) => return Ok(Err(format!("analysis: {e}"))),
    };
    let evaluation = sonarqube::evaluate(&analysis, &project.quality);
    let path = project.gitlab.as_str();

    // Where the status goes: the MR's source project and branch, or the branch. A pull
    // request whose key names no merge request is an error, never a branch of that name.
    let subject = match analysis.subject() {
        Ok(subject) => subject,
        Err(reason) => return Ok(Err(reason)),
    };
    let found = locate(services, path, subject).await?;
    let mr_iid = match subject {
        Subject::MergeRequest(iid) => Some(iid),
        _ => None,
    };
    let target = match subject {
        Subject::MergeRequest(iid) => format!("merge request !{iid}"),
        Subject::Branch(branch) => format!("branch {branch}"),
        Subject::DefaultBranch => "branch (default)".to_owned(),
    };
    let Some((project_id, latest_sha, git_ref)) = found else {
        return Ok(Err(format!(
            "{target} of {path} is not known to ci-bridge or GitLab"
        )));
    };
    let (sha, note) = match (&analysis.revision, latest_sha) {
        (Some(revision), _) => (revision.to_ascii_lowercase(), None),
        (None, Some(sha)) => {
            let short: String = sha.chars().take(8).collect();
            let note = format!("no revision in the analysis; latest build of {target} ({short})");
            (sha, Some(note))
        }
        (None, None) => {
            return Ok(Err(format!(
                "no revision in the analysis and no build of {target}"
            )));
        }
    };

    let mut summary = serde_json::to_value(&evaluation).unwrap_or_default();
    summary["dashboard"] = analysis.dashboard().into();
    summary["revision_note"] = note.clone().into();
    Ok(Ok(Resolution {
        project_path: path.to_owned(),
        gitlab_project_id: project_id,
        sha,
        git_ref,
        mr_iid,
        status_name: project.quality.sonarqube_status.clone(),
        outcome: if evaluation.passed {
            "success"
        } else {
            "failed"
        }
        .into(),
        description: sonarqube::description(&evaluation, note.as_deref()),
        target_url: analysis.dashboard(),
        summary,
        analysed_ms: analysis.analysis_time_ms(),
        changed_ms: analysis.changed_time_ms(),
    }))
}

async fn sast_report(
    services: &Services,
    row: &QualityRow,
    body: &[u8],
) -> Result<Result<Resolution, Unresolved>, JobError> {
    let Some(build_id) = row.build_id.as_deref() else {
        return Ok(Err("the report names no build".into()));
    };
    let Some(build) = services.store.build(build_id).await? else {
        return Ok(Err(format!("build {build_id} is not stored")));
    };
    let project = match services.config.project(&build.project_path) {
        Some(project) => project,
        None => {
            return Ok(Err(format!(
                "project {} is no longer configured",
                build.project_path
            )))
        }
    };
    let report = match sast::parse(body) {
        Ok(report) => report,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let quality = &project.quality;
    let summary = sast::summarize(&report, quality.sast_fail_at, quality.note_top_findings);
    let config = &services.config;
    let base = config
        .jenkins
        .public_url
        .as_ref()
        .unwrap_or(&config.jenkins.url);
    let url = match build.build_number {
        Some(number) => job_url(base, &build.job_name, &[&number.to_string(), ""]),
        None => job_url(base, &build.job_name, &[]),
    };
    Ok(Ok(Resolution {
        project_path: build.project_path.clone(),
        gitlab_project_id: build.gitlab_project_id,
        sha: build.sha.clone(),
        git_ref: build.git_ref.clone(),
        mr_iid: build.mr_iid,
        status_name: quality.sast_status.clone(),
        outcome: if summary.passed { "success" } else { "failed" }.into(),
        description: summary.description(),
        target_url: url.to_string(),
        summary: serde_json::to_value(&summary).unwrap_or_default(),
        analysed_ms: None,
        changed_ms: None,
    }))
}
