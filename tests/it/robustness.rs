//! Bad input of every shape: property tests of the payload and signature code, and a
//! bounded stream of mangled requests at the running service. Nothing may panic, and the
//! service answers every request with a 4xx (or 2xx) and a JSON error code, never a 5xx.

use ci_bridge::{
    config::{Secret, Secrets},
    gitlab::{
        events::{routing, EventKind, GitLabEvent},
        verify::{Presented, Verifier},
    },
};
use proptest::{prelude::*, strategy::ValueTree};
use serde_json::Value;

use crate::{
    payloads::{self, SHA_A, SHA_B},
    support::{TestApp, PROJECT},
};

const KINDS: [EventKind; 7] = [
    EventKind::Push,
    EventKind::TagPush,
    EventKind::MergeRequest,
    EventKind::Note,
    EventKind::Pipeline,
    EventKind::Job,
    EventKind::Other,
];

/// Replaces the value at a pseudo-random path of `value` with `replacement`.
fn mangle(mut value: &mut Value, mut choice: usize, replacement: Value) {
    loop {
        let children: Vec<String> = match value {
            Value::Object(map) => map.keys().cloned().collect(),
            Value::Array(items) => (0..items.len()).map(|i| i.to_string()).collect(),
            _ => Vec::new(),
        };
        if children.is_empty() || choice % 4 == 0 {
            *value = replacement;
            return;
        }
        let key = &children[choice % children.len()];
        choice /= 3;
        value = match value {
            Value::Object(map) => map.get_mut(key).expect("key listed"),
            Value::Array(items) => &mut items[key.parse::<usize>().expect("index")],
            _ => unreachable!(),
        };
    }
}

fn odd_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(serde_json::json!(1e308)),
        Just(serde_json::json!(18446744073709551615u64)),
        ".{0,40}".prop_map(Value::from),
        Just(
            serde_json::from_str::<Value>(&format!("{}{}", "[".repeat(40), "]".repeat(40)))
                .unwrap()
        ),
        Just(serde_json::json!({})),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_payload_code(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = routing(&body);
        for kind in KINDS {
            let _ = GitLabEvent::parse(kind, &body);
        }
    }

    #[test]
    fn mangled_real_shapes_never_panic_the_payload_code(choice in any::<usize>(), replacement in odd_value(), which in 0usize..3) {
        let body = match which {
            0 => payloads::push(PROJECT, "main", SHA_B, SHA_A),
            1 => payloads::merge_request(PROJECT, "update", SHA_A, Some(SHA_B)),
            _ => payloads::mr_comment(PROJECT, SHA_A, "grace", "/retest"),
        };
        let mut value: Value = serde_json::from_str(&body).unwrap();
        mangle(&mut value, choice, replacement);
        let bytes = serde_json::to_vec(&value).unwrap();
        let _ = routing(&bytes);
        for kind in KINDS {
            let _ = GitLabEvent::parse(kind, &bytes);
        }
    }

    #[test]
    fn arbitrary_signature_headers_never_verify_or_panic(
        id in ".{0,30}", timestamp in ".{0,20}", signature in ".{0,120}", token in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let verifier = Verifier::new(
            &Secrets::from(vec![Secret::new("the-token")]),
            &Secrets::from(vec![Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]),
        );
        let presented = Presented {
            token: Some(&token),
            webhook_id: Some(&id),
            timestamp: Some(&timestamp),
            signature: Some(&signature),
        };
        let verdict = verifier.verify(&presented, b"{}", 1_700_000_000);
        prop_assert!(verdict.is_err(), "accepted an arbitrary signature");
    }
}

#[tokio::test]
async fn mangled_requests_get_clear_4xx_answers_and_never_a_5xx() {
    let app = TestApp::spawn().await;
    app.gitlab.add_project(payloads::PROJECT_ID, PROJECT);
    // The merge request the valid payload names exists, so its summary note can be kept.
    let author = ci_bridge_fakes::gitlab::User::new(7, "ada", "Ada Lovelace");
    app.gitlab.add_merge_request(
        payloads::PROJECT_ID,
        5,
        author,
        "feature/login",
        "main",
        SHA_A,
    );
    let valid = payloads::merge_request(PROJECT, "update", SHA_A, Some(SHA_B));
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (any::<usize>(), odd_value(), 0usize..6);
    for round in 0..150 {
        let (choice, replacement, how) = strategy.new_tree(&mut runner).unwrap().current();
        let (body, event): (Vec<u8>, &str) = match how {
            0 => (
                valid.as_bytes()[..valid.len() * (choice % 100) / 100].to_vec(),
                "Merge Request Hook",
            ),
            1 => {
                let mut value: Value = serde_json::from_str(&valid).unwrap();
                mangle(&mut value, choice, replacement);
                (serde_json::to_vec(&value).unwrap(), "Merge Request Hook")
            }
            2 => (vec![0xff, 0xfe, b'{', 0x80], "Push Hook"),
            3 => ("[".repeat(10_000).into_bytes(), "Push Hook"),
            4 => (valid.clone().into_bytes(), "Unknown Future Hook"),
            _ => (
                format!("{{\"project\":{{\"path_with_namespace\":\"{PROJECT}\"}},\"n\":1e999}}")
                    .into_bytes(),
                "Push Hook",
            ),
        };
        let key = format!("robustness-{round}");
        let response = app
            .http
            .post(format!("{}/hooks/gitlab", app.url))
            .header("Content-Type", "application/json")
            .header("X-Gitlab-Event", event)
            .header("X-Gitlab-Token", crate::support::WEBHOOK_TOKEN)
            .header("Idempotency-Key", key)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(
            !status.is_server_error(),
            "round {round}: {status} for {:?}",
            String::from_utf8_lossy(&body)
        );
        if status.is_client_error() {
            let error: Value = response.json().await.expect("errors are JSON");
            assert!(error["error"].is_string(), "round {round}: {error}");
        }
    }
    // Every accepted event is processed without the worker stalling or giving up.
    let dead: Value = app
        .admin_get("/api/v1/dead-letters")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(dead["dead_letters"], serde_json::json!([]));
}
