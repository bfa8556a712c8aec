//! A strict, stateful fake of the GitLab REST API calls ci-bridge makes.
//!
//! Commit statuses follow GitLab's state machine (a second `pending` is a 400, a new state
//! after a terminal one creates a new job and retries the old), notes are authored by the
//! token's user and only that user may edit them, quick actions in note bodies are
//! recorded as executed, and errors carry GitLab's status codes and JSON bodies.

mod api;
mod entities;
mod mrs;
mod notes;
mod paging;
mod records;
mod routes;
mod state;
mod statuses;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use records::{CommitStatus, Note, StatusPost, User};

use crate::server::Server;
use state::{Fault, MergeRequest, Project, State, StoredNote};

pub(crate) type Shared = Arc<Mutex<State>>;

/// How the fake GitLab is set up.
#[derive(Clone)]
pub struct GitLabOptions {
    /// The access token every API call must carry.
    pub token: String,
    /// The user the token belongs to: the author of notes and statuses it creates.
    pub bot_user: User,
}

impl Default for GitLabOptions {
    fn default() -> Self {
        GitLabOptions {
            token: "fake-gitlab-token".to_owned(),
            bot_user: User::new(999, "ci-bridge", "CI Bridge"),
        }
    }
}

impl fmt::Debug for GitLabOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitLabOptions")
            .field("token", &"<redacted>")
            .field("bot_user", &self.bot_user)
            .finish()
    }
}

/// A fake GitLab listening on `127.0.0.1`. Cloning shares the same instance.
#[derive(Clone)]
pub struct FakeGitLab {
    state: Shared,
    server: Arc<Server>,
    base_url: String,
}

impl FakeGitLab {
    /// Starts the fake on `127.0.0.1:0` in a tokio task.
    pub async fn start(opts: GitLabOptions) -> FakeGitLab {
        let state: Shared = Arc::new(Mutex::new(State::new(opts.token, opts.bot_user)));
        let server = Server::spawn(routes::router(state.clone())).await;
        let base_url = format!("http://{}", server.addr());
        FakeGitLab {
            state,
            server: Arc::new(server),
            base_url,
        }
    }

    /// `http://127.0.0.1:PORT`; the REST API is under `/api/v4`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Adds a project reachable as `:id` by its number or its URL-encoded path.
    pub fn add_project(&self, id: u64, path_with_namespace: &str) {
        let project = Project {
            id,
            path: path_with_namespace.to_owned(),
        };
        self.lock().projects.insert(id, project);
    }

    /// Every status job ever created on `sha` in the project, oldest first.
    pub fn statuses(&self, project_id: u64, sha: &str) -> Vec<CommitStatus> {
        let sha = sha.to_ascii_lowercase();
        self.all_statuses()
            .into_iter()
            .filter(|s| s.project_id == project_id && s.sha == sha)
            .collect()
    }

    /// Every status job on the instance, oldest first.
    pub fn all_statuses(&self) -> Vec<CommitStatus> {
        self.lock()
            .statuses
            .iter()
            .map(|j| j.status.clone())
            .collect()
    }

    /// Every POST to the statuses endpoint, accepted or not, in arrival order.
    pub fn status_posts(&self) -> Vec<StatusPost> {
        self.lock().status_posts.clone()
    }

    /// The notes on a merge request, oldest first.
    pub fn notes(&self, project_id: u64, mr_iid: u64) -> Vec<Note> {
        let st = self.lock();
        st.notes
            .iter()
            .filter(|n| n.project_id == project_id && n.mr_iid == mr_iid)
            .map(|n| Note {
                id: n.id,
                body: n.body.clone(),
                author: n.author.clone(),
                created_at: st.clock.rfc3339(n.created),
                updated_at: st.clock.rfc3339(n.updated),
                system: n.system,
            })
            .collect()
    }

    /// Adds a note written by someone else (setup data: its quick actions are not run).
    pub fn add_note_as(&self, project_id: u64, mr_iid: u64, author: User, body: &str) -> u64 {
        let mut st = self.lock();
        assert!(
            st.mrs.contains_key(&(project_id, mr_iid)),
            "no merge request !{mr_iid} in project {project_id}"
        );
        let now = Instant::now();
        let id = st.fresh_id();
        st.notes.push(StoredNote {
            id,
            project_id,
            mr_iid,
            body: body.to_owned(),
            author,
            created: now,
            updated: now,
            system: false,
        });
        id
    }

    /// Adds an open merge request (one approval required, none given, no commits).
    pub fn add_merge_request(
        &self,
        project_id: u64,
        iid: u64,
        author: User,
        source_branch: &str,
        target_branch: &str,
        head_sha: &str,
    ) {
        let mut st = self.lock();
        assert!(
            st.projects.contains_key(&project_id),
            "no project {project_id} in the fake"
        );
        let id = st.fresh_id();
        let mr = MergeRequest {
            id,
            project_id,
            iid,
            author,
            source_branch: source_branch.to_owned(),
            target_branch: target_branch.to_owned(),
            sha: head_sha.to_owned(),
            created: Instant::now(),
            approvals_required: 1,
            approved_by: Vec::new(),
            commits: Vec::new(),
        };
        st.mrs.insert((project_id, iid), mr);
    }

    /// Sets who has approved the merge request.
    pub fn set_approvals(&self, project_id: u64, iid: u64, approved_by: Vec<User>) {
        self.with_mr(project_id, iid, |mr| mr.approved_by = approved_by);
    }

    /// Sets how many approvals the merge request needs (1 unless changed).
    pub fn set_approvals_required(&self, project_id: u64, iid: u64, required: u64) {
        self.with_mr(project_id, iid, |mr| mr.approvals_required = required);
    }

    /// Sets the merge request's commits as `(sha, author_email, author_name)`, newest first.
    pub fn set_mr_commits(
        &self,
        project_id: u64,
        iid: u64,
        commits: Vec<(String, String, String)>,
    ) {
        self.with_mr(project_id, iid, |mr| mr.commits = commits);
    }

    /// Quick action lines GitLab would have executed from notes posted or edited via the API.
    pub fn quick_actions(&self) -> Vec<String> {
        self.lock().quick_actions.clone()
    }

    /// The next `n` API requests answer `status`, with `Retry-After` when given.
    pub fn fail_next(&self, n: usize, status: u16, retry_after: Option<u64>) {
        self.lock().fault = (n > 0).then_some(Fault {
            left: n,
            status,
            retry_after,
        });
    }

    /// How many HTTP requests the fake has received.
    pub fn request_count(&self) -> usize {
        self.lock().request_count
    }

    /// Stops the server; later connections are refused. Idempotent.
    pub fn shutdown(&self) {
        self.server.shutdown();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake GitLab state poisoned")
    }

    fn with_mr(&self, project_id: u64, iid: u64, f: impl FnOnce(&mut MergeRequest)) {
        let mut st = self.lock();
        let mr = st
            .mrs
            .get_mut(&(project_id, iid))
            .unwrap_or_else(|| panic!("no merge request !{iid} in project {project_id}"));
        f(mr);
    }
}
