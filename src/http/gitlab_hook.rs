//! `POST /hooks/gitlab`: verify, check, record, answer. The work runs later from the queue.

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, StatusCode},
    Json,
};
use sha2::{Digest, Sha256};

use super::{
    body::{read_limited, require_json, single, single_bytes, GITLAB_MAX_BODY},
    error::ApiError,
    AppState,
};
use crate::{
    gitlab::{
        events::{routed_event, routing, EventKind, GitLabEvent, PayloadError},
        verify::Presented,
    },
    store::{now_ms, plan_job, Ingested, NewEvent},
};

/// The body of a 202 or 200 answer.
#[derive(serde::Serialize)]
pub struct Answer {
    status: &'static str,
    event_id: String,
}

/// A recorded delivery: new, or the same as one recorded before.
struct Recorded {
    duplicate: bool,
    event_id: String,
    kind: EventKind,
}

pub async fn receive(
    State(app): State<AppState>,
    request: Request,
) -> Result<(StatusCode, Json<Answer>), ApiError> {
    // The request taken whole, so its headers are moved out rather than copied.
    let (parts, body) = request.into_parts();
    match handle(&app, &parts.headers, body).await {
        Ok(recorded) => {
            let (status, label) = if recorded.duplicate {
                (StatusCode::OK, "duplicate")
            } else {
                (StatusCode::ACCEPTED, "accepted")
            };
            app.metrics.webhook("gitlab", recorded.kind.as_str(), label);
            let body = Answer {
                status: label,
                event_id: recorded.event_id,
            };
            Ok((status, Json(body)))
        }
        Err(error) => {
            app.metrics.rejection("gitlab", error.code);
            tracing::warn!(
                status = error.status.as_u16(),
                code = error.code,
                "gitlab webhook rejected"
            );
            Err(error)
        }
    }
}

async fn handle(app: &AppState, headers: &HeaderMap, body: Body) -> Result<Recorded, ApiError> {
    require_json(headers)?;
    let body = read_limited(headers, body, GITLAB_MAX_BODY).await?;

    // The project is needed before verification, to pick its secrets. For the kinds that
    // build, the event is read and checked in the same pass (bounded in size; see
    // `events::single_pass`); for the others only the routing fields are read now, and the
    // event once the body is verified.
    let announced = announced_kind(headers);
    let (routed, checked_as) = match announced.and_then(|kind| routed_event(kind, &body)) {
        Some((routed, _event)) => (Ok(routed), announced),
        None => (routing(&body), None),
    };
    let path = routed.as_ref().ok().and_then(|r| r.project_path.clone());
    let project = path.as_deref().and_then(|p| app.config.project(p));
    let verifier = match project {
        Some(project) => app.verifiers.for_project(&project.gitlab),
        None => &app.verifiers.default,
    };
    let presented = Presented {
        token: single_bytes(headers, "x-gitlab-token")?,
        webhook_id: single(headers, "webhook-id")?,
        timestamp: single(headers, "webhook-timestamp")?,
        signature: single(headers, "webhook-signature")?,
    };
    if !verifier.is_empty() || project.is_some() {
        if let Err(error) = verifier.verify(&presented, &body, now_ms() / 1000) {
            app.metrics.rejection("gitlab_verify", error.reason());
            return Err(ApiError::unauthorized(error.to_string()));
        }
    }

    // Verified (or no project could match): now the payload may be looked at.
    let routed = routed.map_err(|e| match e {
        PayloadError::NotJson(m) => ApiError::bad_request("invalid_json", m),
        other => ApiError::bad_request("invalid_payload", other.to_string()),
    })?;
    let path = path.ok_or_else(|| {
        ApiError::bad_request(
            "invalid_payload",
            "payload lacks project.path_with_namespace",
        )
    })?;
    let Some(project) = project else {
        return Err(ApiError::not_found(
            "unknown_project",
            format!("project {path} is not configured"),
        ));
    };
    let header = single(headers, "x-gitlab-event")?
        .filter(|h| !h.trim().is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("missing_event_header", "X-Gitlab-Event header is missing")
        })?;
    let kind = match (header, routed.object_kind.as_deref()) {
        ("System Hook", Some(object_kind)) => EventKind::from_object_kind(object_kind),
        (header, _) => EventKind::from_header(header),
    };
    if checked_as != Some(kind) {
        GitLabEvent::parse(kind, &body).map_err(|e| match e {
            PayloadError::NotJson(m) => ApiError::bad_request("invalid_json", m),
            other => ApiError::bad_request("invalid_payload", other.to_string()),
        })?;
    }

    // GitLab's Idempotency-Key (equal to webhook-id) is stable across retries and resends;
    // without it, the same kind and body is the same delivery.
    let dedup_key = match single(headers, "idempotency-key")?.or(presented.webhook_id) {
        Some(key) if !key.trim().is_empty() => format!("gitlab:key:{}", key.trim()),
        _ => {
            let mut hash = Sha256::new();
            hash.update(header.as_bytes());
            hash.update(b"\n");
            hash.update(&body);
            format!("gitlab:body:{}", hex::encode(hash.finalize()))
        }
    };
    let id = uuid::Uuid::now_v7().to_string();
    let job = plan_job(&project.gitlab);
    let event = NewEvent {
        id,
        source: "gitlab",
        kind: kind.as_str().to_owned(),
        dedup_key,
        project: Some(project.gitlab.clone()),
        received_at: now_ms(),
        body,
        job: Some(job),
    };
    let answer = app
        .ingest
        .record(event)
        .await
        .map_err(ApiError::unavailable)?;
    let (duplicate, event_id) = match answer {
        Ingested::Stored(id) => (false, id),
        Ingested::Duplicate(id) => (true, id),
    };
    // Debug, not info: every accepted event gets its info line when it is planned (with
    // the decision); one more per request would cost a write to the log on the ack path.
    tracing::debug!(
        event = %event_id, project = %project.gitlab, kind = kind.as_str(), duplicate,
        "gitlab webhook recorded"
    );
    Ok(Recorded {
        duplicate,
        event_id,
        kind,
    })
}

/// The kind `X-Gitlab-Event` names, when it is sent once and is not a system hook's (whose
/// kind is in the body); errors in the header are reported later, in their usual place.
fn announced_kind(headers: &HeaderMap) -> Option<EventKind> {
    let mut values = headers.get_all("x-gitlab-event").iter();
    let header = values.next()?.to_str().ok()?;
    if values.next().is_some() || header == "System Hook" {
        return None;
    }
    Some(EventKind::from_header(header))
}
