//! Evidence of merges, hash-chained; the compliance report with its deviations; the
//! scheduled check that posts them; and `ci-bridge audit verify` on an edited row.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::{
    four_eyes::{ada, bob, mr_event, open_mr, quality_app, status_becomes, IID},
    payloads::{self, PROJECT_ID, SHA_A, SHA_B, SHA_C},
    support::{eventually, TestApp, PROJECT, WAIT},
};

/// Merges !5 (opened at SHA_A) after the given approvals, and waits for its evidence.
async fn merge_after(app: &TestApp, approvers: Vec<ci_bridge_fakes::gitlab::User>) {
    open_mr(app, SHA_A).await;
    status_becomes(app, SHA_A, "jenkins", "success").await;
    app.gitlab.set_approvals(PROJECT_ID, IID, approvers.clone());
    for user in &approvers {
        let body = mr_event("approval", SHA_A, user);
        app.post_gitlab("Merge Request Hook", &body, &[]).await;
    }
    let merge = mr_event("merge", SHA_A, &bob());
    assert_eq!(
        app.post_gitlab("Merge Request Hook", &merge, &[])
            .await
            .status(),
        202
    );
    evidence_recorded(app).await;
}

/// Waits until a merge's evidence is recorded.
pub async fn evidence_recorded(app: &TestApp) {
    eventually("the evidence record", WAIT, || async {
        let rows = app.store.evidence(None).await.ok()?;
        (!rows.is_empty()).then_some(())
    })
    .await;
}

async fn report(app: &TestApp, format: &str) -> String {
    let response = app
        .admin_get(&format!(
            "/api/v1/compliance/report?since=7d&format={format}"
        ))
        .await;
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

#[tokio::test]
async fn a_merge_approved_only_by_its_author_is_a_deviation_in_the_report() {
    let app = quality_app("", "").await;
    merge_after(&app, vec![ada()]).await;

    let json: Value = serde_json::from_str(&report(&app, "json").await).unwrap();
    let merge = &json["merges"][0];
    assert_eq!(merge["evidence"]["author"]["username"], "ada");
    assert_eq!(merge["evidence"]["merged_by"]["username"], "bob");
    assert_eq!(merge["evidence"]["merge_commit_sha"], SHA_C);
    assert_eq!(merge["evidence"]["head_sha"], SHA_A);
    assert_eq!(merge["evidence"]["pipeline"]["result"], "SUCCESS");
    assert_eq!(
        merge["evidence"]["commit_authors"][0]["email"],
        "ada@example.com"
    );
    let codes: Vec<&str> = merge["deviations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"approved_by_merge_request_author"),
        "{codes:?}"
    );
    assert!(
        codes.contains(&"approved_by_insufficient_users"),
        "{codes:?}"
    );
    assert!(codes.contains(&"sast_missing"), "{codes:?}");
    assert!(!codes.contains(&"pipeline_failed"), "{codes:?}");

    let markdown = report(&app, "markdown").await;
    assert!(markdown.contains("**Approved by author**"), "{markdown}");
    assert!(
        markdown.contains("| Log in with SSO | @ada | @ada | @bob | SUCCESS |"),
        "{markdown}"
    );
    let csv = report(&app, "csv").await;
    assert!(csv.lines().nth(1).unwrap().starts_with("merge,"), "{csv}");
}

#[tokio::test]
async fn a_push_to_main_that_no_merge_explains_is_a_deviation() {
    let app = quality_app("", "").await;
    merge_after(&app, vec![bob()]).await;
    let merged = payloads::push(PROJECT, "main", SHA_B, SHA_C);
    app.post_gitlab("Push Hook", &merged, &[]).await;
    let direct = payloads::push(PROJECT, "main", SHA_C, SHA_B);
    app.post_gitlab("Push Hook", &direct, &[]).await;

    eventually("both pushes recorded", WAIT, || async {
        let pushes = app.store.guarded_pushes_since(0).await.ok()?;
        (pushes.len() == 2).then_some(())
    })
    .await;
    let json: Value = serde_json::from_str(&report(&app, "json").await).unwrap();
    let pushes = json["unexplained_pushes"].as_array().unwrap();
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    assert_eq!(pushes[0]["sha"], SHA_B);
    assert_eq!(pushes[0]["code"], "push_without_merge_request");
}

fn database_url(app: &TestApp) -> String {
    let line = app
        .config_text
        .lines()
        .find(|l| l.starts_with("url = \"sqlite:") || l.starts_with("url = \"postgres"))
        .expect("a database url");
    line.trim_start_matches("url = \"")
        .trim_end_matches('"')
        .to_owned()
}

#[tokio::test]
async fn editing_one_evidence_row_makes_audit_verify_fail_at_that_row() {
    let app = quality_app("", "").await;
    merge_after(&app, vec![bob()]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ci-bridge.toml");
    std::fs::write(&config, &app.config_text).unwrap();
    let verify = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ci-bridge"))
            .args(["audit", "verify", "--config"])
            .arg(&config)
            .output()
            .expect("the binary runs")
    };
    let intact = verify();
    assert!(intact.status.success(), "{intact:?}");
    assert!(String::from_utf8_lossy(&intact.stdout).contains("intact: 1 record"));

    let pool = sqlx::AnyPool::connect(&database_url(&app)).await.unwrap();
    sqlx::query(
        "UPDATE evidence SET record = REPLACE(record, 'Log in with SSO', 'Log in') WHERE seq = 1",
    )
    .execute(&pool)
    .await
    .unwrap();
    let broken = verify();
    assert!(!broken.status.success());
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(stderr.contains("broken at record 1"), "{stderr}");
    let api: Value = app
        .admin_get("/api/v1/compliance/verify")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(api["intact"], false);
    assert_eq!(api["broken_at"], 1);
}

/// Starts a receiver for the scheduled check's messages on loopback.
async fn check_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = received.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let extra =
        format!("[compliance]\ninterval = \"300ms\"\nwebhook_url = \"http://{address}/hook\"\n");
    (extra, received)
}

async fn deviation_posted(received: &Arc<Mutex<Vec<Value>>>) -> Value {
    eventually("a check naming the deviation", WAIT, || async {
        let all = received.lock().unwrap().clone();
        all.into_iter().find(|m| {
            m["text"]
                .as_str()
                .unwrap_or("")
                .contains("Approved by author")
        })
    })
    .await
}

#[tokio::test]
async fn the_scheduled_check_posts_the_deviations_to_the_configured_webhook() {
    let (extra, received) = check_receiver().await;
    let app = quality_app("", &extra).await;
    merge_after(&app, vec![ada()]).await;
    let message = deviation_posted(&received).await;
    assert!(message["deviations"]
        .as_array()
        .is_some_and(|d| !d.is_empty()));
}

/// A merge whose evidence is committed after a check has started (here: stamped before
/// the last delivered check) is still in the next check: checks follow the evidence
/// chain, not the clock.
#[tokio::test]
async fn a_merge_recorded_after_a_check_began_is_in_the_next_check() {
    let (extra, received) = check_receiver().await;
    let app = quality_app("", &extra).await;
    let ahead = ci_bridge::store::now_ms() + 60_000;
    let check = ci_bridge::store::DeliveredCheck {
        checked_at: ahead,
        since: ahead - 300,
        through_seq: Some(0),
        through_hash: Some(ci_bridge::audit::evidence::GENESIS.to_owned()),
        merges: 0,
        deviations: 0,
        push_event_ids: Vec::new(),
    };
    app.store.record_compliance_check(&check).await.unwrap();
    merge_after(&app, vec![ada()]).await;
    deviation_posted(&received).await;
}

/// Runs `ci-bridge audit verify` on `config_text` with `args`.
fn audit_verify(config_text: &str, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ci-bridge.toml");
    std::fs::write(&config, config_text).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_ci-bridge"))
        .args(["audit", "verify", "--config"])
        .arg(&config)
        .args(args)
        .output()
        .expect("the binary runs")
}

/// The newest records removed after a check delivered them, or with them the checks'
/// own rows: the head the check kept, or the anchor taken from its message, names it.
#[tokio::test]
async fn removing_the_newest_evidence_is_caught_by_the_heads_that_left_the_database() {
    let (extra, received) = check_receiver().await;
    let mut app = quality_app("", &extra).await;
    merge_after(&app, vec![ada()]).await;
    let message = deviation_posted(&received).await;
    let head = &message["chain"]["head"];
    assert_eq!(head["seq"], 1, "{message}");
    let anchor = format!("1:{}", head["hash"].as_str().unwrap());
    assert!(message["text"].as_str().unwrap().contains(&anchor));

    let pool = sqlx::AnyPool::connect(&database_url(&app)).await.unwrap();
    eventually("the delivered check kept", WAIT, || async {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM compliance_checks WHERE through_seq = 1")
            .fetch_one(&pool)
            .await
            .ok()?;
        (sqlx::Row::try_get::<i64, _>(&row, "n").ok()? > 0).then_some(())
    })
    .await;
    // Stop the checks first: the next one would otherwise record the shortened chain.
    app.stop().await;
    let config_text = app.config_text.clone();
    sqlx::query("DELETE FROM evidence WHERE seq = 1")
        .execute(&pool)
        .await
        .unwrap();
    let kept = audit_verify(&config_text, &[]);
    assert!(!kept.status.success(), "{kept:?}");
    let stderr = String::from_utf8_lossy(&kept.stderr);
    assert!(stderr.contains("removed from the end"), "{stderr}");

    sqlx::query("DELETE FROM compliance_checks")
        .execute(&pool)
        .await
        .unwrap();
    let alone = audit_verify(&config_text, &[]);
    assert!(alone.status.success(), "nothing left to compare with");
    let anchored = audit_verify(&config_text, &["--anchor", &anchor]);
    assert!(!anchored.status.success(), "{anchored:?}");
    assert!(String::from_utf8_lossy(&anchored.stderr).contains("broken at record 1"));
}

#[tokio::test]
async fn audit_verify_on_a_mistyped_database_path_fails_and_creates_nothing() {
    let app = quality_app("", "").await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo.db");
    let url = format!("sqlite://{}", missing.display());
    let config_text = app.config_text.replace(&database_url(&app), &url);
    let output = audit_verify(&config_text, &[]);
    assert!(!output.status.success(), "{output:?}");
    assert!(!missing.exists());
}
