//! Evidence of merges: one append-only record per merge, chained by hashes.
//!
//! Each record is canonical JSON (keys sorted, no whitespace) and carries
//! `hash = sha256(prev_hash ‖ record)`, where `prev_hash` is the previous record's hash (64
//! zeros for the first). Editing, removing or reordering any row breaks the chain at that
//! row, which [`verify`] names.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::four_eyes::{self, CommitPerson};
use crate::{
    config::ProjectConfig,
    outbound::CallError,
    store::{
        audit_tx::{append_evidence, chain_head},
        now_ms, EvidenceRow, QualitySource, Store, UserRef,
    },
    worker::{JobError, Services},
};

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `sha256(prev_hash ‖ record)`, lower-case hex.
pub fn chain_hash(prev_hash: &str, record: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(prev_hash.as_bytes());
    digest.update(record.as_bytes());
    hex::encode(digest.finalize())
}

/// A permanent GitLab failure leaves the field to what ci-bridge recorded itself; a
/// transient one fails the job so that it is retried.
fn lookup<T>(what: &str, answer: Result<T, CallError>) -> Result<Option<T>, JobError> {
    match answer {
        Ok(value) => Ok(Some(value)),
        Err(error) if error.is_transient() => Err(error.into()),
        Err(error) => {
            tracing::warn!(%error, what, "GitLab lookup failed; using what was recorded");
            Ok(None)
        }
    }
}

/// The commit authors of a merge request: from GitLab now, else as last recorded.
pub async fn commit_people(
    services: &Services,
    project_id: i64,
    iid: i64,
    recorded: Option<&str>,
) -> Result<(Vec<CommitPerson>, bool), JobError> {
    let started = std::time::Instant::now();
    let answer = services.gitlab.merge_request_commits(project_id, iid).await;
    let elapsed = started.elapsed();
    services
        .metrics
        .outbound("gitlab", "mr_commits", answer.is_ok(), elapsed);
    if let Some(commits) = lookup("merge request commits", answer)? {
        let mut people: Vec<CommitPerson> = Vec::new();
        for commit in commits {
            for person in [
                CommitPerson {
                    name: commit.author_name.clone(),
                    email: commit.author_email.clone(),
                },
                CommitPerson {
                    name: commit.committer_name.clone(),
                    email: commit.committer_email.clone(),
                },
            ] {
                if (person.name.is_some() || person.email.is_some()) && !people.contains(&person) {
                    people.push(person);
                }
            }
        }
        let json = serde_json::to_string(&people).unwrap_or_else(|_| "[]".into());
        services
            .store
            .set_commit_authors(project_id, iid, &json)
            .await?;
        return Ok((people, true));
    }
    let people = recorded
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    Ok((people, false))
}

/// Brings the stored approvals in line with the approvals API; false when GitLab could not
/// say (then the approvals recorded from webhooks stand).
pub async fn sync_approvals(
    services: &Services,
    project_id: i64,
    iid: i64,
) -> Result<bool, JobError> {
    let started = std::time::Instant::now();
    let answer = services.gitlab.approved_by(project_id, iid).await;
    let elapsed = started.elapsed();
    services
        .metrics
        .outbound("gitlab", "mr_approvals", answer.is_ok(), elapsed);
    let Some(users) = lookup("merge request approvals", answer)? else {
        return Ok(false);
    };
    let users: Vec<UserRef> = users
        .into_iter()
        .map(|u| UserRef {
            id: u.id,
            username: u.username,
            name: u.name,
        })
        .collect();
    services
        .store
        .sync_approvals(project_id, iid, &users)
        .await?;
    Ok(true)
}

/// The users who approve a merge request now.
pub async fn active_approvers(
    store: &Store,
    project_id: i64,
    iid: i64,
) -> sqlx::Result<Vec<UserRef>> {
    Ok(store
        .approvals(project_id, iid)
        .await?
        .into_iter()
        .filter(|a| a.withdrawn_at.is_none())
        .map(|a| UserRef {
            id: a.user_id,
            username: a.username,
            name: a.name,
        })
        .collect())
}

/// Records the evidence of the merge in the Merge Request Hook `value`.
pub async fn record_merge(
    services: &Services,
    project: &ProjectConfig,
    event_id: &str,
    value: &Value,
) -> Result<(), JobError> {
    let store = &services.store;
    if store.evidence_exists(event_id).await? {
        return Ok(());
    }
    let attrs = &value["object_attributes"];
    let iid = attrs["iid"].as_i64().unwrap_or_default();
    let project_id = attrs["target_project_id"].as_i64().unwrap_or_default();
    let source_project_id = attrs["source_project_id"].as_i64().unwrap_or(project_id);
    let head_sha = attrs["last_commit"]["id"].as_str().unwrap_or("").to_owned();

    let approvals_from_api = sync_approvals(services, project_id, iid).await?;
    let mr = store
        .merge_request(project_id, iid)
        .await?
        .unwrap_or_default();
    let (people, commits_from_api) =
        commit_people(services, project_id, iid, mr.commit_authors.as_deref()).await?;
    let details = if mr.author_username.is_none() || attrs["merge_commit_sha"].is_null() {
        lookup(
            "merge request",
            services
                .gitlab
                .merge_request(&project_id.to_string(), iid)
                .await,
        )?
    } else {
        None
    };
    let author = UserRef {
        id: mr
            .author_id
            .or(attrs["author_id"].as_i64())
            .unwrap_or_default(),
        username: mr.author_username.clone().or_else(|| {
            details
                .as_ref()
                .and_then(|d| d.author.as_ref()?.username.clone())
        }),
        name: mr.author_name.clone().or_else(|| {
            details
                .as_ref()
                .and_then(|d| d.author.as_ref()?.name.clone())
        }),
    };
    let approvers = store.approvals(project_id, iid).await?;
    let active = active_approvers(store, project_id, iid).await?;
    let state = four_eyes::evaluate(&author, &people, &active);
    let merge_commit_sha = attrs["merge_commit_sha"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| details.as_ref().and_then(|d| d.merge_commit_sha.clone()));
    let squash_commit_sha = details.as_ref().and_then(|d| d.squash_commit_sha.clone());

    let pipeline = store.latest_build_of(source_project_id, &head_sha).await?;
    let gate = store
        .latest_quality(source_project_id, &head_sha, QualitySource::SonarQube)
        .await?;
    let sast = store
        .latest_quality(source_project_id, &head_sha, QualitySource::Sast)
        .await?;
    let quality_view = |row: Option<crate::store::QualityRow>| {
        row.map(|r| {
            json!({
                "result_id": r.id, "status": r.status_name, "outcome": r.outcome,
                "description": r.description, "summary": r.summary, "received_at": r.received_at,
            })
        })
    };
    let merged_at = now_ms();
    let record = json!({
        "event_id": event_id,
        "project": project.gitlab,
        "project_id": project_id,
        "mr_iid": iid,
        "title": attrs["title"],
        "url": attrs["url"],
        "source_branch": attrs["source_branch"],
        "target_branch": attrs["target_branch"],
        "author": author,
        "commit_authors": people,
        "approvers": approvers.iter().map(|a| json!({
            "id": a.user_id, "username": a.username, "name": a.name,
            "approved_at": a.approved_at, "withdrawn_at": a.withdrawn_at,
        })).collect::<Vec<_>>(),
        "four_eyes": state,
        "merged_by": value["user"],
        "merge_commit_sha": merge_commit_sha,
        "squash_commit_sha": squash_commit_sha,
        "head_sha": head_sha,
        "pipeline": pipeline,
        "quality_gate": quality_view(gate),
        "sast": quality_view(sast),
        "policy": {
            "required_approvals": project.quality.required_approvals,
            "required_ratings": project.quality.required_ratings,
            "sast_fail_at": project.quality.sast_fail_at,
        },
        "sources": { "approvals_api": approvals_from_api, "commits_api": commits_from_api },
        "mr_created_at": attrs["created_at"],
        // GitLab's time of the merge event; `merged_at` is when ci-bridge recorded it.
        "merge_event_at": attrs["updated_at"],
        "merged_at": merged_at,
    });
    append(
        store,
        event_id,
        &project.gitlab,
        iid,
        merge_commit_sha.as_deref(),
        merged_at,
        &record,
    )
    .await?;
    tracing::info!(project = %project.gitlab, iid, "evidence of the merge recorded");
    Ok(())
}

async fn append(
    store: &Store,
    event_id: &str,
    project_path: &str,
    iid: i64,
    merge_commit_sha: Option<&str>,
    merged_at: i64,
    record: &Value,
) -> sqlx::Result<()> {
    let text = serde_json::to_string(record).unwrap_or_default();
    let mut tx = store.begin().await?;
    let (seq, prev_hash) = match chain_head(&mut tx).await? {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_owned()),
    };
    let row = EvidenceRow {
        seq,
        event_id: event_id.to_owned(),
        project_path: project_path.to_owned(),
        mr_iid: iid,
        merge_commit_sha: merge_commit_sha.map(str::to_owned),
        merged_at,
        hash: chain_hash(&prev_hash, &text),
        prev_hash,
        record: text,
    };
    append_evidence(&mut tx, &row).await?;
    tx.commit().await
}

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub seq: i64,
    pub reason: String,
}

/// Walks the whole chain; `Ok(n)` is the number of intact records.
pub fn verify(rows: &[EvidenceRow]) -> Result<usize, Broken> {
    let mut prev = GENESIS.to_owned();
    for (expected_seq, row) in (1_i64..).zip(rows.iter()) {
        let broken = |reason: &str| Broken {
            seq: row.seq,
            reason: reason.to_owned(),
        };
        if row.seq != expected_seq {
            return Err(Broken {
                seq: expected_seq,
                reason: format!("record {expected_seq} is missing (next is {})", row.seq),
            });
        }
        if row.prev_hash != prev {
            return Err(broken("prev_hash is not the hash of the record before"));
        }
        if chain_hash(&row.prev_hash, &row.record) != row.hash {
            return Err(broken("the record does not match its hash (edited)"));
        }
        let record: Value = serde_json::from_str(&row.record).map_err(|_| broken("not JSON"))?;
        let columns_match = record["event_id"] == row.event_id.as_str()
            && record["project"] == row.project_path.as_str()
            && record["mr_iid"] == row.mr_iid
            && record["merged_at"] == row.merged_at
            && record["merge_commit_sha"].as_str() == row.merge_commit_sha.as_deref();
        if !columns_match {
            return Err(broken("a column differs from the hashed record (edited)"));
        }
        prev = row.hash.clone();
    }
    Ok(rows.len())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn chain(n: i64) -> Vec<EvidenceRow> {
        chain_of("a/b", n)
    }

    /// A valid chain of `n` records of `project`.
    pub fn chain_of(project: &str, n: i64) -> Vec<EvidenceRow> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let record =
                    json!({"event_id": format!("e{seq}"), "project": project, "mr_iid": seq,
                    "merged_at": seq, "merge_commit_sha": null})
                    .to_string();
                let hash = chain_hash(&prev, &record);
                let row = EvidenceRow {
                    seq,
                    event_id: format!("e{seq}"),
                    project_path: project.into(),
                    mr_iid: seq,
                    merge_commit_sha: None,
                    merged_at: seq,
                    record,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                row
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies_and_an_edit_names_its_record() {
        let mut rows = chain(3);
        assert_eq!(verify(&rows), Ok(3));
        rows[1].record = rows[1].record.replace("\"mr_iid\":2", "\"mr_iid\":9");
        assert_eq!(verify(&rows).unwrap_err().seq, 2);
        let mut rows = chain(3);
        rows[2].mr_iid = 7;
        assert_eq!(verify(&rows).unwrap_err().seq, 3);
        let mut rows = chain(3);
        rows.remove(1);
        assert_eq!(verify(&rows).unwrap_err().seq, 2);
    }
}
