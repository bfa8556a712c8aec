//! Commit statuses: `POST /projects/:id/statuses/:sha` with GitLab's state machine, and
//! `GET /projects/:id/repository/commits/:sha/statuses`.
//!
//! As in `Ci::CreateCommitStatusService`, a post looks for a pending or running status
//! with the same pipeline, name and ref; if there is none it creates a new job (and any
//! older job of that name and ref is marked retried), then fires the transition the
//! requested state maps to. A transition the state machine refuses is a 400.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::extract::{Path, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::api::{ApiError, Params};
use super::entities;
use super::records::CommitStatus;
use super::state::{is_full_sha, Pipeline, State, StatusJob};
use super::{paging, Shared};

/// The states the API accepts.
const STATES: [&str; 6] = [
    "pending", "running", "success", "failed", "canceled", "skipped",
];
/// Longest `target_url` and `description`, in characters.
const MAX_TEXT_CHARS: usize = 255;
/// The ref used when none is given and nothing else on the commit names one.
const DEFAULT_BRANCH: &str = "main";

/// `POST /projects/:id/statuses/:sha`.
pub(crate) async fn create(
    AxumState(shared): AxumState<Shared>,
    Path((project, sha)): Path<(String, String)>,
    params: Params,
) -> Response {
    let mut st = shared.lock().expect("fake GitLab state poisoned");
    match create_status(&mut st, &project, &sha, &params, Instant::now()) {
        Ok(body) => (StatusCode::CREATED, Json(body)).into_response(),
        Err(error) => error.into_response(),
    }
}

/// `GET /projects/:id/repository/commits/:sha/statuses`: latest (or `all`) newest first.
pub(crate) async fn list(
    AxumState(shared): AxumState<Shared>,
    Path((project, sha)): Path<(String, String)>,
    params: Params,
) -> Response {
    let st = shared.lock().expect("fake GitLab state poisoned");
    let result = (|| {
        let project_id = st.project(&project)?;
        if !is_full_sha(&sha) {
            return Err(ApiError::not_found("Commit"));
        }
        let sha = sha.to_ascii_lowercase();
        let all = matches!(params.get("all"), Some("true" | "1" | "yes"));
        let mut jobs: Vec<&StatusJob> = st
            .statuses
            .iter()
            .filter(|j| j.status.project_id == project_id && j.status.sha == sha)
            .filter(|j| all || !j.status.retried)
            .filter(|j| params.get("ref").map_or(true, |r| j.status.ref_ == r))
            .filter(|j| params.get("name").map_or(true, |n| j.status.name == n))
            .collect();
        jobs.sort_by_key(|j| std::cmp::Reverse(j.status.id));
        let items = jobs
            .into_iter()
            .map(|j| entities::commit_status(&st, j))
            .collect();
        paging::page(items, &params)
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

fn create_status(
    st: &mut State,
    raw_project: &str,
    raw_sha: &str,
    p: &Params,
    now: Instant,
) -> Result<Value, ApiError> {
    // Grape validates declared parameters before the endpoint runs.
    let target = match p.get("state") {
        None => {
            return Err(ApiError::param(
                "state is missing, state does not have a valid value",
            ))
        }
        Some(s) if !STATES.contains(&s) => {
            return Err(ApiError::param("state does not have a valid value"))
        }
        Some(s) => s.to_owned(),
    };
    let coverage = parse_opt::<f64>(p, "coverage")?;
    let pipeline_id = parse_opt::<u64>(p, "pipeline_id")?;

    let project_id = st.project(raw_project)?;
    if !is_full_sha(raw_sha) {
        return Err(ApiError::not_found("Commit"));
    }
    let sha = raw_sha.to_ascii_lowercase();
    let name = p
        .present("name")
        .or_else(|| p.present("context"))
        .unwrap_or("default")
        .to_owned();
    let ref_ = match p.present("ref") {
        Some(r) => r.to_owned(),
        None => default_ref(st, project_id, &sha),
    };
    let pipeline = pipeline_for(st, project_id, &sha, &ref_, pipeline_id)?;
    validate_attributes(p)?;

    let open = st.statuses.iter().position(|j| {
        j.status.pipeline_id == pipeline
            && j.status.name == name
            && j.status.ref_ == ref_
            && matches!(j.status.state.as_str(), "pending" | "running")
    });
    let index = match open {
        Some(index) => index,
        None => new_job(st, project_id, &sha, &ref_, &name, pipeline, now),
    };

    let job = &mut st.statuses[index];
    let next = transition(&job.status.state, &target)
        .map_err(|message| ApiError::message(StatusCode::BAD_REQUEST, &message))?;
    job.status.state = next.to_owned();
    if let Some(url) = p.get("target_url") {
        job.status.target_url = Some(url.to_owned());
    }
    if let Some(description) = p.get("description") {
        job.status.description = Some(description.to_owned());
    }
    if coverage.is_some() {
        job.status.coverage = coverage;
    }
    if next == "running" {
        job.started = Some(now);
    }
    if matches!(next, "success" | "failed" | "canceled" | "skipped") {
        job.finished = Some(now);
    }

    Ok(entities::commit_status(st, &st.statuses[index]))
}

fn parse_opt<T: std::str::FromStr>(p: &Params, name: &str) -> Result<Option<T>, ApiError> {
    p.get(name)
        .map(|text| {
            text.trim()
                .parse::<T>()
                .map_err(|_| ApiError::param(&format!("{name} is invalid")))
        })
        .transpose()
}

/// Without `ref`: the MR whose head is this commit, else the ref of an earlier status on
/// it, else the default branch (standing in for "the first branch containing the SHA").
fn default_ref(st: &State, project_id: u64, sha: &str) -> String {
    let from_mr = st
        .mrs
        .values()
        .find(|mr| mr.project_id == project_id && mr.sha.eq_ignore_ascii_case(sha))
        .map(|mr| mr.source_branch.clone());
    let from_status = || {
        st.statuses
            .iter()
            .rev()
            .find(|j| j.status.project_id == project_id && j.status.sha == sha)
            .map(|j| j.status.ref_.clone())
    };
    from_mr
        .or_else(from_status)
        .unwrap_or_else(|| DEFAULT_BRANCH.to_owned())
}

/// The given pipeline if it matches (sha, ref), else the newest one for them, else a new
/// external pipeline.
fn pipeline_for(
    st: &mut State,
    project_id: u64,
    sha: &str,
    ref_: &str,
    wanted: Option<u64>,
) -> Result<u64, ApiError> {
    let matches = |p: &Pipeline| p.project_id == project_id && p.sha == sha && p.ref_ == ref_;
    if let Some(id) = wanted {
        return st
            .pipelines
            .iter()
            .find(|p| p.id == id && matches(p))
            .map(|p| p.id)
            .ok_or_else(|| ApiError::not_found("Pipeline for pipeline_id, sha and ref"));
    }
    if let Some(existing) = st.pipelines.iter().rev().find(|p| matches(p)) {
        return Ok(existing.id);
    }
    let id = st.fresh_id();
    st.pipelines.push(Pipeline {
        id,
        project_id,
        sha: sha.to_owned(),
        ref_: ref_.to_owned(),
    });
    Ok(id)
}

/// The model validations on `target_url` and `description`.
fn validate_attributes(p: &Params) -> Result<(), ApiError> {
    let too_long = format!("is too long (maximum is {MAX_TEXT_CHARS} characters)");
    let mut errors: BTreeMap<&str, Vec<String>> = BTreeMap::new();

    // A given link is validated even when blank: only a missing one is no link.
    if let Some(url) = p.get("target_url") {
        if url.chars().count() > MAX_TEXT_CHARS {
            errors
                .entry("target_url")
                .or_default()
                .push(too_long.clone());
        }
        match url::Url::parse(url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
            Ok(_) => errors
                .entry("target_url")
                .or_default()
                .push("is blocked: Only allowed schemes are http, https".to_owned()),
            Err(_) => errors
                .entry("target_url")
                .or_default()
                .push("is blocked: URI is invalid".to_owned()),
        }
    }
    if let Some(description) = p.get("description") {
        if description.chars().count() > MAX_TEXT_CHARS {
            errors.entry("description").or_default().push(too_long);
        }
    }

    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(errors))
    }
}

/// Creates a job in state `created` and marks older jobs of that name and ref retried.
fn new_job(
    st: &mut State,
    project_id: u64,
    sha: &str,
    ref_: &str,
    name: &str,
    pipeline_id: u64,
    now: Instant,
) -> usize {
    for job in &mut st.statuses {
        if job.status.pipeline_id == pipeline_id
            && job.status.name == name
            && job.status.ref_ == ref_
        {
            job.status.retried = true;
        }
    }
    let id = st.fresh_id();
    st.statuses.push(StatusJob {
        status: CommitStatus {
            id,
            project_id,
            sha: sha.to_owned(),
            ref_: ref_.to_owned(),
            name: name.to_owned(),
            state: "created".to_owned(),
            description: None,
            target_url: None,
            coverage: None,
            pipeline_id,
            retried: false,
        },
        created: now,
        started: None,
        finished: None,
    });
    st.statuses.len() - 1
}

/// The state after firing the event `target` maps to, or the state machine's refusal.
///
/// `running` first tries `enqueue` quietly, then `run!`, as the service does.
fn transition(from: &str, target: &str) -> Result<&'static str, String> {
    let (event, allowed, to): (&str, &[&str], &'static str) = match target {
        "pending" => ("enqueue", &["created"], "pending"),
        "running" => ("run", &["pending"], "running"),
        "success" => ("success", &["created", "pending", "running"], "success"),
        "failed" => ("drop", &["created", "pending", "running"], "failed"),
        "canceled" => ("cancel", &["created", "pending", "running"], "canceled"),
        _ => ("skip", &["created", "pending"], "skipped"),
    };
    let from = if target == "running" && from == "created" {
        "pending"
    } else {
        from
    };
    if allowed.contains(&from) {
        Ok(to)
    } else {
        Err(format!(
            "Cannot transition status via :{event} from :{from} \
             (Reason(s): Status cannot transition via \"{event}\")"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::transition;

    #[test]
    fn running_from_created_enqueues_then_runs() {
        assert_eq!(transition("created", "running"), Ok("running"));
    }

    #[test]
    fn skip_after_running_is_refused() {
        let refused = transition("running", "skipped").unwrap_err();
        assert_eq!(
            refused,
            concat!(
                "Cannot transition status via :skip from :running ",
                "(Reason(s): Status cannot transition via \"skip\")"
            )
        );
    }
}
