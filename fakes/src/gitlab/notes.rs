//! Merge request notes: list, create, show, edit and delete, with quick actions detected
//! the way GitLab would execute them.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::extract::{Path, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::api::{ApiError, Params};
use super::state::{State, StoredNote};
use super::{entities, paging, Shared};

/// GitLab's limit on a note body, in characters.
const MAX_NOTE_CHARS: usize = 1_000_000;

/// Quick actions GitLab runs on merge request notes; a line starting with one executes it.
const QUICK_ACTIONS: &[&str] = &[
    "approve",
    "unapprove",
    "merge",
    "close",
    "reopen",
    "rebase",
    "draft",
    "ready",
    "wip",
    "assign",
    "unassign",
    "assign_reviewer",
    "reviewer",
    "request_review",
    "unassign_reviewer",
    "remove_reviewer",
    "label",
    "unlabel",
    "relabel",
    "milestone",
    "remove_milestone",
    "title",
    "target_branch",
    "lock",
    "unlock",
    "subscribe",
    "unsubscribe",
    "todo",
    "done",
    "award",
    "react",
    "estimate",
    "remove_estimate",
    "spend",
    "remove_time_spent",
    "due",
    "remove_due_date",
    "copy_metadata",
    "cc",
    "shrug",
    "tableflip",
    "submit_review",
    "confidential",
    "clone",
    "move",
];

type NotePath = Path<(String, String)>;
type OneNotePath = Path<(String, String, String)>;

fn locked(shared: &Shared) -> std::sync::MutexGuard<'_, State> {
    shared.lock().expect("fake GitLab state poisoned")
}

fn answer(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET …/merge_requests/:iid/notes` with `sort`, `order_by`, `per_page` and `page`.
pub(crate) async fn list(
    AxumState(shared): AxumState<Shared>,
    Path((project, iid)): NotePath,
    params: Params,
) -> Response {
    let st = locked(&shared);
    answer((|| {
        let (project_id, iid) = mr_key(&st, &project, &iid)?;
        let descending = match params.get("sort").unwrap_or("desc") {
            "desc" => true,
            "asc" => false,
            _ => return Err(ApiError::param("sort does not have a valid value")),
        };
        let by_updated = match params.get("order_by").unwrap_or("created_at") {
            "created_at" => false,
            "updated_at" => true,
            _ => return Err(ApiError::param("order_by does not have a valid value")),
        };

        let mut notes: Vec<&StoredNote> = st
            .notes
            .iter()
            .filter(|n| n.project_id == project_id && n.mr_iid == iid)
            .collect();
        notes.sort_by_key(|n| (if by_updated { n.updated } else { n.created }, n.id));
        if descending {
            notes.reverse();
        }
        let items = notes.into_iter().map(|n| entities::note(&st, n)).collect();
        paging::page(items, &params)
    })())
}

/// `POST …/merge_requests/:iid/notes`: the note is authored by the token's user.
pub(crate) async fn create(
    AxumState(shared): AxumState<Shared>,
    Path((project, iid)): NotePath,
    params: Params,
) -> Response {
    let mut st = locked(&shared);
    answer((|| {
        let (project_id, iid) = mr_key(&st, &project, &iid)?;
        let given = note_body(&params)?;
        let (body, commands) = run_quick_actions(&mut st, &given);
        if body.trim().is_empty() && !commands.is_empty() {
            // A note of nothing but quick actions is not stored; GitLab answers 202.
            let doc = json!({"commands_changes": {}, "summary": commands});
            return Ok((StatusCode::ACCEPTED, Json(doc)).into_response());
        }

        let now = Instant::now();
        let note = StoredNote {
            id: st.fresh_id(),
            project_id,
            mr_iid: iid,
            body,
            author: st.bot.clone(),
            created: now,
            updated: now,
            system: false,
        };
        let doc = entities::note(&st, &note);
        st.notes.push(note);
        Ok((StatusCode::CREATED, Json(doc)).into_response())
    })())
}

/// `GET …/merge_requests/:iid/notes/:note_id`.
pub(crate) async fn show(
    AxumState(shared): AxumState<Shared>,
    Path((project, iid, note)): OneNotePath,
) -> Response {
    let st = locked(&shared);
    answer((|| {
        let index = note_index(&st, &project, &iid, &note)?;
        Ok(Json(entities::note(&st, &st.notes[index])).into_response())
    })())
}

/// `PUT …/merge_requests/:iid/notes/:note_id`: only the note's author may edit it.
pub(crate) async fn update(
    AxumState(shared): AxumState<Shared>,
    Path((project, iid, note)): OneNotePath,
    params: Params,
) -> Response {
    let mut st = locked(&shared);
    answer((|| {
        let index = note_index(&st, &project, &iid, &note)?;
        if st.notes[index].author.id != st.bot.id {
            return Err(ApiError::forbidden());
        }
        let given = note_body(&params)?;
        let (body, _commands) = run_quick_actions(&mut st, &given);

        let stored = &mut st.notes[index];
        stored.body = body;
        stored.updated = Instant::now();
        let doc = entities::note(&st, &st.notes[index]);
        Ok(Json(doc).into_response())
    })())
}

/// `DELETE …/merge_requests/:iid/notes/:note_id`: 204, or 403 for another user's note.
pub(crate) async fn delete(
    AxumState(shared): AxumState<Shared>,
    Path((project, iid, note)): OneNotePath,
) -> Response {
    let mut st = locked(&shared);
    answer((|| {
        let index = note_index(&st, &project, &iid, &note)?;
        if st.notes[index].author.id != st.bot.id {
            return Err(ApiError::forbidden());
        }
        st.notes.remove(index);
        Ok(StatusCode::NO_CONTENT.into_response())
    })())
}

fn mr_key(st: &State, project: &str, iid: &str) -> Result<(u64, u64), ApiError> {
    let mr = st.merge_request(project, iid)?;
    Ok((mr.project_id, mr.iid))
}

fn note_index(st: &State, project: &str, iid: &str, note: &str) -> Result<usize, ApiError> {
    let (project_id, iid) = mr_key(st, project, iid)?;
    let id: u64 = note.parse().map_err(|_| ApiError::record_not_found())?;
    st.notes
        .iter()
        .position(|n| n.id == id && n.project_id == project_id && n.mr_iid == iid)
        .ok_or_else(ApiError::record_not_found)
}

/// The `body` parameter, checked as GitLab checks it.
fn note_body(params: &Params) -> Result<String, ApiError> {
    let Some(body) = params.get("body") else {
        return Err(ApiError::param("body is missing"));
    };
    if body.trim().is_empty() {
        return Err(ApiError::param("body is empty"));
    }
    if body.chars().count() > MAX_NOTE_CHARS {
        let message = format!("is too long (maximum is {MAX_NOTE_CHARS} characters)");
        return Err(ApiError::invalid(BTreeMap::from([("note", vec![message])])));
    }
    Ok(body.to_owned())
}

/// Records the quick actions in `body` as executed and returns the body without them.
fn run_quick_actions(st: &mut State, body: &str) -> (String, Vec<String>) {
    let (kept, commands) = split_quick_actions(body);
    st.quick_actions.extend(commands.iter().cloned());
    (kept, commands)
}

/// Splits `body` into the text GitLab keeps and the quick action lines it executes:
/// lines that start with `/<known command>`, outside fenced code blocks.
pub(crate) fn split_quick_actions(body: &str) -> (String, Vec<String>) {
    let mut kept = Vec::new();
    let mut commands = Vec::new();
    let mut in_fence = false;

    for line in body.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        if !in_fence && is_quick_action(line) {
            commands.push(line.trim_end().to_owned());
        } else {
            kept.push(line);
        }
    }
    (kept.join("\n"), commands)
}

fn is_quick_action(line: &str) -> bool {
    let Some(rest) = line.strip_prefix('/') else {
        return false;
    };
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let after = &rest[word.len()..];
    let ends_word = after.is_empty() || after.starts_with(char::is_whitespace);
    ends_word && QUICK_ACTIONS.iter().any(|q| q.eq_ignore_ascii_case(&word))
}

#[cfg(test)]
mod tests {
    use super::split_quick_actions;

    #[test]
    fn quick_actions_count_only_at_line_start_outside_code_fences() {
        let body = concat!(
            "Build passed\n/merge\n  /close\n> /approve\n",
            "```\n/approve\n```\n/mergeable\n/label ~ok",
        );
        let (kept, commands) = split_quick_actions(body);
        assert_eq!(commands, ["/merge", "/label ~ok"]);
        assert!(kept.contains("  /close"));
        assert!(kept.contains("/mergeable"));
    }
}
