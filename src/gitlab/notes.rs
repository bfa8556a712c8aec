//! Merge request notes: list, create and edit (`…/merge_requests/:iid/notes`).

use serde::Deserialize;

use super::{
    merge_requests::{get_json, read_json, ApiUser},
    GitLabClient,
};
use crate::outbound::CallError;

/// Pages of notes searched at most for ci-bridge's own note (100 notes each).
const MAX_NOTE_PAGES: u32 = 10;

#[derive(Debug, Clone, Deserialize)]
pub struct ApiNote {
    pub id: i64,
    pub body: String,
    pub author: ApiUser,
}

impl GitLabClient {
    /// The newest notes first, until `found` accepts one.
    pub async fn find_note(
        &self,
        project_id: i64,
        iid: i64,
        found: impl Fn(&ApiNote) -> bool,
    ) -> Result<Option<ApiNote>, CallError> {
        let path = super::client::merge_request_path(project_id, iid, &["notes"]);
        for page in 1..=MAX_NOTE_PAGES {
            let page_text = page.to_string();
            let query = [
                ("sort", "desc"),
                ("order_by", "updated_at"),
                ("per_page", "100"),
                ("page", page_text.as_str()),
            ];
            let notes: Vec<ApiNote> = get_json(self, &path, &query).await?;
            let last = notes.len() < 100;
            if let Some(note) = notes.into_iter().find(|n| found(n)) {
                return Ok(Some(note));
            }
            if last {
                break;
            }
        }
        Ok(None)
    }

    /// `POST …/notes`.
    pub async fn create_note(
        &self,
        project_id: i64,
        iid: i64,
        body: &str,
    ) -> Result<ApiNote, CallError> {
        let path = super::client::merge_request_path(project_id, iid, &["notes"]);
        let request = self
            .request(reqwest::Method::POST, &path)
            .json(&serde_json::json!({ "body": body }));
        read_json(request).await
    }

    /// `PUT …/notes/:note_id`.
    pub async fn edit_note(
        &self,
        project_id: i64,
        iid: i64,
        note_id: i64,
        body: &str,
    ) -> Result<ApiNote, CallError> {
        let note = note_id.to_string();
        let path = super::client::merge_request_path(project_id, iid, &["notes", &note]);
        let request = self
            .request(reqwest::Method::PUT, &path)
            .json(&serde_json::json!({ "body": body }));
        read_json(request).await
    }
}
