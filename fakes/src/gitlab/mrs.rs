//! Merge request reads: the MR itself, its approvals and its commits; plus the project and
//! current-user lookups a client uses to check its token.

use axum::extract::{Path, State as AxumState};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::api::ApiError;
use super::state::{MergeRequest, State};
use super::{entities, Shared};

type MrPath = Path<(String, String)>;

fn with_mr(
    shared: &Shared,
    project: &str,
    iid: &str,
    render: fn(&State, &MergeRequest) -> Value,
) -> Response {
    let st = shared.lock().expect("fake GitLab state poisoned");
    match st.merge_request(project, iid) {
        Ok(mr) => Json(render(&st, mr)).into_response(),
        Err(error) => error.into_response(),
    }
}

/// `GET /projects/:id/merge_requests/:iid`.
pub(crate) async fn show(
    AxumState(shared): AxumState<Shared>,
    Path((project, iid)): MrPath,
) -> Response {
    with_mr(&shared, &project, &iid, entities::merge_request)
}

/// `GET /projects/:id/merge_requests/:iid/approvals`.
pub(crate) async fn approvals(
    AxumState(shared): AxumState<Shared>,
    Path((project, iid)): MrPath,
) -> Response {
    with_mr(&shared, &project, &iid, entities::approvals)
}

/// `GET /projects/:id/merge_requests/:iid/commits`.
pub(crate) async fn commits(
    AxumState(shared): AxumState<Shared>,
    Path((project, iid)): MrPath,
) -> Response {
    with_mr(&shared, &project, &iid, entities::commits)
}

/// `GET /projects/:id`.
pub(crate) async fn project(
    AxumState(shared): AxumState<Shared>,
    Path(project): Path<String>,
) -> Response {
    let st = shared.lock().expect("fake GitLab state poisoned");
    let found = st.project(&project).and_then(|id| {
        st.projects
            .get(&id)
            .ok_or_else(|| ApiError::not_found("Project"))
    });
    match found {
        Ok(p) => {
            let name = p.path.rsplit('/').next().unwrap_or(&p.path);
            let namespace = p.path.rsplit_once('/').map_or("", |(ns, _)| ns);
            Json(json!({
                "id": p.id,
                "name": name,
                "path": name,
                "path_with_namespace": p.path,
                "namespace": {"full_path": namespace},
                "default_branch": "main",
                "web_url": format!("{}/{}", entities::WEB_URL, p.path),
            }))
            .into_response()
        }
        Err(error) => error.into_response(),
    }
}

/// `GET /user`: the user the token belongs to.
pub(crate) async fn current_user(AxumState(shared): AxumState<Shared>) -> Response {
    let st = shared.lock().expect("fake GitLab state poisoned");
    Json(entities::user(&st.bot)).into_response()
}
