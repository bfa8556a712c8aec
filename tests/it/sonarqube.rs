//! SonarQube webhooks: verified on the raw body, recorded, answered at once, and turned
//! into a `sonarqube` commit status on the analysed commit.

use serde_json::{json, Value};

use crate::{
    four_eyes::{note_shows, open_mr, quality_app, states, status_becomes, SONAR_SECRET},
    payloads::{self, PROJECT_ID, SHA_A, SHA_B},
    support::{eventually, TestApp, PROJECT, WAIT},
};

/// Posts an analysis signed as SonarQube signs it (or with the given signature).
pub async fn post_sonar(app: &TestApp, body: &str, signature: Option<&str>) -> reqwest::Response {
    let signed = ci_bridge::sonarqube::sign(SONAR_SECRET, body.as_bytes());
    app.http
        .post(format!("{}/hooks/sonarqube", app.url))
        .header("Content-Type", "application/json; charset=utf-8")
        .header("X-SonarQube-Project", "collector")
        .header(
            "X-Sonar-Webhook-HMAC-SHA256",
            signature.unwrap_or(signed.as_str()),
        )
        .body(body.to_owned())
        .send()
        .await
        .expect("request reaches the app")
}

fn condition(metric: &str, value: &str, status: &str) -> Value {
    json!({"metric": metric, "operator": "GREATER_THAN", "value": value,
           "status": status, "errorThreshold": "1"})
}

/// An analysis of pull request `pr` (or, without one, of branch `main`).
pub fn analysis(revision: Option<&str>, pr: Option<&str>, gate: &str, conditions: Value) -> String {
    let branch = match pr {
        Some(key) => json!({"name": key, "type": "PULL_REQUEST", "isMain": false,
            "url": format!("https://sonar.example.com/dashboard?id=collector&pullRequest={key}")}),
        None => json!({"name": "main", "type": "BRANCH", "isMain": true,
            "url": "https://sonar.example.com/dashboard?id=collector"}),
    };
    let mut body = json!({
        "serverUrl": "https://sonar.example.com", "taskId": "AX1", "status": "SUCCESS",
        "analysedAt": "2026-12-01T10:00:00+0000", "changedAt": "2026-12-01T10:00:00+0000",
        "project": {"key": "collector", "name": "Collector",
                    "url": "https://sonar.example.com/dashboard?id=collector"},
        "branch": branch,
        "qualityGate": {"name": "Team way", "status": gate, "conditions": conditions},
        "properties": {}
    });
    if let Some(revision) = revision {
        body["revision"] = revision.into();
    }
    body.to_string()
}

#[tokio::test]
async fn a_failing_gate_on_a_merge_request_posts_a_failed_status_naming_its_conditions() {
    let app = quality_app("", "").await;
    open_mr(&app, SHA_A).await;
    let body = analysis(
        Some(SHA_A),
        Some("5"),
        "ERROR",
        json!([
            condition("new_security_rating", "3", "ERROR"),
            condition("new_security_review_rating", "1", "OK"),
        ]),
    );
    let response = post_sonar(&app, &body, None).await;
    assert_eq!(response.status(), 202);
    assert_eq!(
        post_sonar(&app, &body, None).await.status(),
        200,
        "duplicate"
    );

    let status = status_becomes(&app, SHA_A, "sonarqube", "failed").await;
    let description = status.description.unwrap_or_default();
    assert!(
        description.contains("security rating (new code) C (worse than A)"),
        "{description}"
    );
    assert_eq!(status.ref_, "feature/login");
    assert_eq!(
        status.target_url.as_deref(),
        Some("https://sonar.example.com/dashboard?id=collector&pullRequest=5")
    );
    let notes = note_shows(&app, "| security rating (new code) | C |").await;
    assert_eq!(notes.len(), 1);
}

#[tokio::test]
async fn a_wrong_or_missing_signature_is_refused_and_nothing_is_posted() {
    let app = quality_app("", "").await;
    let body = analysis(Some(SHA_A), None, "OK", json!([]));
    let wrong = ci_bridge::sonarqube::sign("another-secret-entirely", body.as_bytes());
    assert_eq!(post_sonar(&app, &body, Some(&wrong)).await.status(), 401);
    assert_eq!(post_sonar(&app, &body, Some("")).await.status(), 401);
    let tampered = body.replace("collector", "collectoR");
    let signed = ci_bridge::sonarqube::sign(SONAR_SECRET, body.as_bytes());
    assert_eq!(
        post_sonar(&app, &tampered, Some(&signed)).await.status(),
        401
    );
    assert!(app.gitlab.status_posts().is_empty());
}

#[tokio::test]
async fn required_ratings_fail_a_gate_sonarqube_passed() {
    let app = quality_app(
        "required_ratings = { new_security_rating = \"A\", new_security_review_rating = \"A\" }",
        "",
    )
    .await;
    open_mr(&app, SHA_A).await;
    let body = analysis(
        Some(SHA_A),
        Some("PR-5"),
        "OK",
        json!([condition("new_software_quality_security_rating", "1", "OK")]),
    );
    assert_eq!(post_sonar(&app, &body, None).await.status(), 202);
    let status = status_becomes(&app, SHA_A, "sonarqube", "failed").await;
    let description = status.description.unwrap_or_default();
    assert!(
        description.contains("security review rating (new code) is ?, required A"),
        "{description}"
    );
}

#[tokio::test]
async fn without_a_revision_the_latest_build_of_the_branch_is_used_and_said() {
    let app = quality_app("", "").await;
    let push = payloads::push(PROJECT, "main", SHA_B, SHA_A);
    app.post_gitlab("Push Hook", &push, &[]).await;
    status_becomes(&app, SHA_A, "jenkins", "success").await;

    let body = analysis(
        None,
        None,
        "OK",
        json!([condition("security_rating", "1", "OK")]),
    );
    assert_eq!(post_sonar(&app, &body, None).await.status(), 202);
    let status = status_becomes(&app, SHA_A, "sonarqube", "success").await;
    let description = status.description.unwrap_or_default();
    assert!(
        description.contains("no revision in the analysis"),
        "{description}"
    );
    assert_eq!(status.ref_, "main");
    assert_eq!(states(&app, SHA_A, "sonarqube"), ["success"]);
}

#[tokio::test]
async fn an_analysis_of_an_unmapped_project_is_refused() {
    let app = quality_app("", "").await;
    let body = analysis(Some(SHA_A), None, "OK", json!([])).replace("collector", "other");
    let response = post_sonar(&app, &body, None).await;
    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"], "unknown_project");
    assert!(app.gitlab.status_posts().is_empty());
}

/// Waits until the job has decided about the stored result the response names.
pub async fn decided(app: &TestApp, response: reqwest::Response) -> ci_bridge::store::QualityRow {
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.unwrap();
    let id = answer["result_id"].as_str().unwrap().to_owned();
    eventually(&format!("result {id} decided"), WAIT, || async {
        let (row, _) = app.store.quality_result(&id).await.ok()??;
        row.outcome.is_some().then_some(row)
    })
    .await
}

/// `analysis` at a given analysis time (`changedAt` the same).
fn analysed_at(body: &str, at: &str) -> String {
    let mut value: Value = serde_json::from_str(body).unwrap();
    value["analysedAt"] = at.into();
    value["changedAt"] = at.into();
    value.to_string()
}

#[tokio::test]
async fn an_older_analysis_delivered_late_does_not_turn_the_status_back() {
    let app = quality_app("", "").await;
    open_mr(&app, SHA_A).await;
    let failing = analysed_at(
        &analysis(
            Some(SHA_A),
            Some("5"),
            "ERROR",
            json!([condition("new_security_rating", "3", "ERROR")]),
        ),
        "2026-12-04T04:33:01+0000",
    );
    let older_passing = analysed_at(
        &analysis(
            Some(SHA_A),
            Some("5"),
            "OK",
            json!([condition("new_security_rating", "1", "OK")]),
        ),
        "2026-12-04T04:20:00+0000",
    );
    let newest = decided(&app, post_sonar(&app, &failing, None).await).await;
    assert_eq!(newest.outcome.as_deref(), Some("failed"));
    status_becomes(&app, SHA_A, "sonarqube", "failed").await;
    note_shows(&app, "| security rating (new code) | C |").await;

    let late = decided(&app, post_sonar(&app, &older_passing, None).await).await;
    assert_eq!(late.outcome.as_deref(), Some("superseded"));
    let decision = late.decision.unwrap_or_default();
    assert!(decision.contains("2026-12-04T04:20:00Z"), "{decision}");
    assert!(decision.contains(&newest.id), "{decision}");

    assert_eq!(states(&app, SHA_A, "sonarqube"), ["failed"]);
    let shown = app
        .store
        .latest_quality(
            PROJECT_ID as i64,
            SHA_A,
            ci_bridge::store::QualitySource::SonarQube,
        )
        .await
        .unwrap()
        .expect("a result is shown");
    assert_eq!(
        shown.id, newest.id,
        "the note and the evidence show the newest"
    );

    // A newer analysis still wins, whatever came before it.
    let newer_passing = analysed_at(&older_passing, "2026-12-04T05:00:00+0000");
    let newer = decided(&app, post_sonar(&app, &newer_passing, None).await).await;
    assert_eq!(newer.outcome.as_deref(), Some("success"));
    status_becomes(&app, SHA_A, "sonarqube", "success").await;
}

#[tokio::test]
async fn a_pull_request_key_that_is_no_merge_request_iid_posts_no_status() {
    let app = quality_app("", "").await;
    open_mr(&app, SHA_A).await;
    for key in ["PR-99999999999999999999999", "PR-feature"] {
        let body = analysis(Some(SHA_A), Some(key), "OK", json!([]));
        let row = decided(&app, post_sonar(&app, &body, None).await).await;
        assert_eq!(row.outcome.as_deref(), Some("unresolved"), "{key}");
        let reason = row.description.unwrap_or_default();
        assert!(reason.contains("names no merge request"), "{key}: {reason}");
    }
    let posted: Vec<_> = app
        .gitlab
        .status_posts()
        .into_iter()
        .filter(|p| p.name == "sonarqube")
        .collect();
    assert!(posted.is_empty(), "{posted:?}");
}

#[tokio::test]
async fn a_dashboard_link_gitlab_would_refuse_is_left_out_and_the_status_still_posted() {
    let app = quality_app("", "").await;
    open_mr(&app, SHA_A).await;
    let long = format!(
        "https://sonar.example.com/dashboard?id=collector&x={}",
        "y".repeat(240)
    );
    let conditions: Vec<Value> = (0..12)
        .map(|i| condition(&format!("new_metric_é_{i}_rating"), "5", "ERROR"))
        .collect();
    let mut body: Value = serde_json::from_str(&analysis(
        Some(SHA_A),
        Some("5"),
        "ERROR",
        json!(conditions),
    ))
    .unwrap();
    body["branch"]["url"] = long.into();
    let row = decided(&app, post_sonar(&app, &body.to_string(), None).await).await;
    assert_eq!(row.outcome.as_deref(), Some("failed"));
    let status = status_becomes(&app, SHA_A, "sonarqube", "failed").await;
    assert_eq!(status.target_url, None);
    let description = status.description.unwrap_or_default();
    assert_eq!(description.chars().count(), 255, "{description}");

    // Neither a link that is no http(s) URL nor none at all makes GitLab refuse it.
    for url in ["javascript:alert(1)", ""] {
        let mut next: Value = body.clone();
        next["branch"]["url"] = url.into();
        next["project"]["url"] = url.into();
        next["analysedAt"] = "2026-12-01T11:00:00+0000".into();
        next["qualityGate"]["status"] = "OK".into();
        next["qualityGate"]["conditions"] = json!([]);
        next["changedAt"] = "2026-12-01T11:00:00+0000".into();
        let row = decided(&app, post_sonar(&app, &next.to_string(), None).await).await;
        assert_eq!(row.outcome.as_deref(), Some("success"), "{url:?}");
    }
    let refused: Vec<_> = app
        .gitlab
        .status_posts()
        .into_iter()
        .filter(|p| p.status >= 400)
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
    let dead = app.store.dead_letters().await.unwrap();
    assert!(dead.is_empty(), "{dead:?}");
}

#[tokio::test]
async fn a_status_gitlab_refuses_says_what_to_check_for_that_code() {
    // GitLab knows no project of that id: 404, which is about the project or the token's
    // view of it, not about the token's access as such.
    let app = TestApp::spawn().await;
    let push = payloads::push(PROJECT, "main", SHA_B, SHA_A);
    app.post_gitlab("Push Hook", &push, &[]).await;
    let dead = eventually("a dead letter", WAIT, || async {
        let dead = app.store.dead_letters().await.ok()?;
        dead.into_iter().find(|d| d.kind == "post_status")
    })
    .await;
    let error = dead.last_error.unwrap_or_default();
    assert!(error.contains("answered 404"), "{error}");
    assert!(
        error.contains("check the project id and the sha"),
        "{error}"
    );
    assert!(!error.contains("token's access"), "{error}");
}
