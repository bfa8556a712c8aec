//! What the fake GitLab stores: projects, merge requests, notes, pipelines and commit
//! status jobs, plus the logs tests read back.

use std::collections::BTreeMap;
use std::time::Instant;

use super::api::ApiError;
use super::records::{CommitStatus, StatusPost, User};
use crate::clock::Clock;

/// A project, addressable by id or by its full path.
#[derive(Debug)]
pub(crate) struct Project {
    pub(crate) id: u64,
    pub(crate) path: String,
}

/// A merge request and what tests configured on it.
#[derive(Debug)]
pub(crate) struct MergeRequest {
    pub(crate) id: u64,
    pub(crate) project_id: u64,
    pub(crate) iid: u64,
    pub(crate) author: User,
    pub(crate) source_branch: String,
    pub(crate) target_branch: String,
    pub(crate) sha: String,
    pub(crate) created: Instant,
    pub(crate) approvals_required: u64,
    pub(crate) approved_by: Vec<User>,
    /// `(sha, author_email, author_name)`, as given to `set_mr_commits`.
    pub(crate) commits: Vec<(String, String, String)>,
}

/// A note on a merge request.
#[derive(Debug, Clone)]
pub(crate) struct StoredNote {
    pub(crate) id: u64,
    pub(crate) project_id: u64,
    pub(crate) mr_iid: u64,
    pub(crate) body: String,
    pub(crate) author: User,
    pub(crate) created: Instant,
    pub(crate) updated: Instant,
    pub(crate) system: bool,
}

/// An external pipeline, one per (project, sha, ref) unless more were created.
#[derive(Debug)]
pub(crate) struct Pipeline {
    pub(crate) id: u64,
    pub(crate) project_id: u64,
    pub(crate) sha: String,
    pub(crate) ref_: String,
}

/// A commit status job with its timestamps.
#[derive(Debug)]
pub(crate) struct StatusJob {
    pub(crate) status: CommitStatus,
    pub(crate) created: Instant,
    pub(crate) started: Option<Instant>,
    pub(crate) finished: Option<Instant>,
}

/// Fault injection: the next `left` API requests answer `status`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fault {
    pub(crate) left: usize,
    pub(crate) status: u16,
    pub(crate) retry_after: Option<u64>,
}

/// Everything the fake GitLab knows, behind one mutex.
pub(crate) struct State {
    pub(crate) token: String,
    pub(crate) bot: User,
    pub(crate) clock: Clock,
    pub(crate) projects: BTreeMap<u64, Project>,
    pub(crate) mrs: BTreeMap<(u64, u64), MergeRequest>,
    pub(crate) notes: Vec<StoredNote>,
    pub(crate) pipelines: Vec<Pipeline>,
    pub(crate) statuses: Vec<StatusJob>,
    pub(crate) status_posts: Vec<StatusPost>,
    pub(crate) quick_actions: Vec<String>,
    pub(crate) fault: Option<Fault>,
    pub(crate) request_count: usize,
    next_id: u64,
}

impl State {
    pub(crate) fn new(token: String, bot: User) -> State {
        State {
            token,
            bot,
            clock: Clock::new(),
            projects: BTreeMap::new(),
            mrs: BTreeMap::new(),
            notes: Vec::new(),
            pipelines: Vec::new(),
            statuses: Vec::new(),
            status_posts: Vec::new(),
            quick_actions: Vec::new(),
            fault: None,
            request_count: 0,
            next_id: 1000,
        }
    }

    /// A fresh id; one counter serves every kind of record, so ids never collide.
    pub(crate) fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Resolves `:id`: a numeric id or a (decoded) `namespace/project` path, any case.
    pub(crate) fn project(&self, raw: &str) -> Result<u64, ApiError> {
        let found = match raw.parse::<u64>() {
            Ok(id) => self.projects.get(&id),
            Err(_) => self
                .projects
                .values()
                .find(|p| p.path.eq_ignore_ascii_case(raw)),
        };
        found
            .map(|p| p.id)
            .ok_or_else(|| ApiError::not_found("Project"))
    }

    /// The merge request `iid` of project `:id`.
    pub(crate) fn merge_request(
        &self,
        raw_project: &str,
        iid: &str,
    ) -> Result<&MergeRequest, ApiError> {
        let project = self.project(raw_project)?;
        let iid: u64 = iid.parse().map_err(|_| ApiError::record_not_found())?;
        self.mrs
            .get(&(project, iid))
            .ok_or_else(ApiError::record_not_found)
    }

    /// Takes one injected fault, if any are left.
    pub(crate) fn take_fault(&mut self) -> Option<Fault> {
        let fault = self.fault?;
        self.fault = (fault.left > 1).then_some(Fault {
            left: fault.left - 1,
            ..fault
        });
        Some(fault)
    }
}

/// Whether `sha` is a full 40-hex commit id.
pub(crate) fn is_full_sha(sha: &str) -> bool {
    sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit())
}
