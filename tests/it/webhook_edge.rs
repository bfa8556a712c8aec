//! What `POST /hooks/gitlab` answers, and that a refused request leaves no trace.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use sha2::Sha256;

use crate::{
    payloads::{self, SHA_A},
    support::{Options, TestApp, PROJECT, SIGNING_TOKEN},
};

fn push_body() -> String {
    payloads::push(PROJECT, "main", payloads::SHA_B, SHA_A)
}

async fn error_code(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: serde_json::Value = response.json().await.expect("errors are JSON");
    assert!(body["message"].is_string(), "{body}");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Nothing was recorded and nothing reached Jenkins.
async fn assert_no_trace(app: &TestApp) {
    assert_eq!(app.event_count().await, 0);
    assert!(app.jenkins.triggers().is_empty());
}

#[tokio::test]
async fn a_verified_push_is_accepted_and_recorded() {
    let app = TestApp::spawn().await;
    let response = app
        .post_gitlab("Push Hook", &push_body(), &[("Idempotency-Key", "k-1")])
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "accepted");
    assert!(body["event_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn a_redelivery_with_the_same_idempotency_key_is_a_duplicate_of_the_first() {
    let app = TestApp::spawn().await;
    let first: serde_json::Value = app
        .post_gitlab("Push Hook", &push_body(), &[("Idempotency-Key", "same")])
        .await
        .json()
        .await
        .unwrap();
    let again = app
        .post_gitlab("Push Hook", &push_body(), &[("Idempotency-Key", "same")])
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again["status"], "duplicate");
    assert_eq!(again["event_id"], first["event_id"]);
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn without_an_idempotency_key_the_same_body_is_a_duplicate() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.post_gitlab("Push Hook", &push_body(), &[])
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.post_gitlab("Push Hook", &push_body(), &[])
            .await
            .status(),
        StatusCode::OK
    );
    let other = payloads::push(PROJECT, "main", SHA_A, payloads::SHA_C);
    assert_eq!(
        app.post_gitlab("Push Hook", &other, &[]).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(app.event_count().await, 2);
}

#[tokio::test]
async fn a_wrong_or_missing_token_is_401_and_leaves_no_trace() {
    let app = TestApp::spawn().await;
    let wrong = app
        .post_gitlab("Push Hook", &push_body(), &[("X-Gitlab-Token", "guess")])
        .await;
    assert_eq!(
        error_code(wrong).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
    let missing = app
        .http
        .post(format!("{}/hooks/gitlab", app.url))
        .header("Content-Type", "application/json")
        .header("X-Gitlab-Event", "Push Hook")
        .body(push_body())
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_no_trace(&app).await;
}

#[tokio::test]
async fn an_unknown_project_is_404_and_leaves_no_trace() {
    let app = TestApp::spawn().await;
    let body = payloads::push("someone/else", "main", payloads::SHA_B, SHA_A);
    let response = app.post_gitlab("Push Hook", &body, &[]).await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::NOT_FOUND, "unknown_project".into())
    );
    assert_no_trace(&app).await;
}

#[tokio::test]
async fn malformed_bodies_are_400_with_stable_codes() {
    let app = TestApp::spawn().await;
    let cases = [
        ("{\"project\": ", "invalid_json"),
        ("[]", "invalid_payload"),
        ("{\"object_kind\":\"push\"}", "invalid_payload"),
        (&*push_body().replace(SHA_A, "not-a-sha"), "invalid_payload"),
        (
            &*payloads::merge_request(PROJECT, "open", SHA_A, None)
                .replace("\"last_commit\"", "\"old_commit\""),
            "invalid_payload",
        ),
    ];
    for (body, code) in cases {
        let event = if body.contains("merge_request") {
            "Merge Request Hook"
        } else {
            "Push Hook"
        };
        let response = app.post_gitlab(event, body, &[]).await;
        let (status, got) = error_code(response).await;
        // A body without a project cannot be matched to one: with the default token it is
        // still verified, then refused for what it lacks.
        assert!(status == StatusCode::BAD_REQUEST, "{body}: {status}");
        assert_eq!(got, code, "{body}");
    }
    assert_no_trace(&app).await;
}

#[tokio::test]
async fn other_content_types_are_415_and_missing_event_headers_400() {
    let app = TestApp::spawn().await;
    let twice = app
        .post_gitlab("Push Hook", &push_body(), &[("Content-Type", "text/plain")])
        .await;
    assert_eq!(
        twice.status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "two content types"
    );
    let text = app
        .http
        .post(format!("{}/hooks/gitlab", app.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Gitlab-Token", crate::support::WEBHOOK_TOKEN)
        .header("X-Gitlab-Event", "Push Hook")
        .body(push_body())
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(text).await,
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type".into()
        )
    );
    let no_event = app
        .http
        .post(format!("{}/hooks/gitlab", app.url))
        .header("Content-Type", "application/json")
        .header("X-Gitlab-Token", crate::support::WEBHOOK_TOKEN)
        .body(push_body())
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(no_event).await,
        (StatusCode::BAD_REQUEST, "missing_event_header".into())
    );
    assert_no_trace(&app).await;
}

#[tokio::test]
async fn bodies_over_25_mib_are_413() {
    let app = TestApp::spawn().await;
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(25 * 1024 * 1024 + 1));
    let response = app.post_gitlab("Push Hook", &huge, &[]).await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into())
    );
    assert_no_trace(&app).await;
}

fn sign(id: &str, timestamp: i64, body: &str) -> String {
    let key = base64::engine::general_purpose::STANDARD
        .decode(SIGNING_TOKEN.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

fn signing_app() -> Options {
    Options {
        projects: Some(format!(
            "[[projects]]\ngitlab = \"{PROJECT}\"\njob = \"{}\"\nsigning_token = \"{SIGNING_TOKEN}\"\nwebhook_token = []\n",
            crate::support::JOB
        )),
        ..Options::default()
    }
}

#[tokio::test]
async fn with_a_signing_token_only_valid_fresh_signatures_are_accepted() {
    let app = TestApp::spawn_with(signing_app()).await;
    let body = push_body();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ts = now.to_string();

    let good = sign("msg-1", now, &body);
    let headers = [
        ("webhook-id", "msg-1"),
        ("webhook-timestamp", ts.as_str()),
        ("webhook-signature", good.as_str()),
    ];
    assert_eq!(
        app.post_gitlab("Push Hook", &body, &headers).await.status(),
        StatusCode::ACCEPTED
    );

    let tampered = body.replace("Ada", "Eve");
    let headers = [
        ("webhook-id", "msg-2"),
        ("webhook-timestamp", ts.as_str()),
        ("webhook-signature", good.as_str()),
    ];
    assert_eq!(
        app.post_gitlab("Push Hook", &tampered, &headers)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let stale_ts = (now - 301).to_string();
    let stale = sign("msg-3", now - 301, &body);
    let headers = [
        ("webhook-id", "msg-3"),
        ("webhook-timestamp", stale_ts.as_str()),
        ("webhook-signature", stale.as_str()),
    ];
    assert_eq!(
        app.post_gitlab("Push Hook", &body, &headers).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // The plain token is not enough for a project that signs.
    assert_eq!(
        app.post_gitlab("Push Hook", &body.replace("Ada", "Bob"), &[])
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn clients_that_trickle_their_request_in_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let options = Options {
        server_config: "header_timeout = \"300ms\"\nrequest_timeout = \"500ms\"".into(),
        ..Options::default()
    };
    let app = TestApp::spawn_with(options).await;
    let address = app.url.trim_start_matches("http://").to_owned();

    // Headers that never finish: the connection is closed.
    let mut slow_head = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow_head
        .write_all(b"POST /hooks/gitlab HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        slow_head.read_to_end(&mut buffer),
    )
    .await;
    assert!(
        read.is_ok(),
        "the server closed the connection of a client that never finished its head"
    );

    // A body that never finishes: 408.
    let mut slow_body = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /hooks/gitlab HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Gitlab-Token: {}\r\nX-Gitlab-Event: Push Hook\r\nContent-Length: 1000\r\n\r\n{{",
        crate::support::WEBHOOK_TOKEN
    );
    slow_body.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 64];
    let n = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        slow_body.read(&mut answer),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );
    assert_eq!(app.event_count().await, 0);
}
