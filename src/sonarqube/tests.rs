use super::*;
use crate::config::Secret;

const PR: &str = r#"{"serverUrl":"https://sq.example.com","taskId":"T1","status":"SUCCESS",
"revision":"f84442009c09b1adc278b6aa80a3853419f54007",
"project":{"key":"app","name":"App","url":"https://sq.example.com/dashboard?id=app"},
"branch":{"name":"PR-12","type":"PULL_REQUEST","isMain":false,"url":"https://sq.example.com/dashboard?id=app&pullRequest=PR-12"},
"qualityGate":{"name":"Team","status":"OK","conditions":[
 {"metric":"new_software_quality_security_rating","operator":"GREATER_THAN","value":"1","status":"OK","errorThreshold":"1"},
 {"metric":"new_security_review_rating","operator":"GREATER_THAN","value":"3","status":"OK","errorThreshold":"4"}]},
"properties":{}}"#;

#[test]
fn a_signature_over_the_raw_body_verifies_and_any_change_fails() {
    let secrets = Secrets::from(vec![Secret::new("s3cret-s3cret-s3cret")]);
    let signature = sign("s3cret-s3cret-s3cret", PR.as_bytes());
    assert!(verify(&secrets, PR.as_bytes(), signature.as_bytes()));
    assert!(!verify(
        &secrets,
        format!("{PR} ").as_bytes(),
        signature.as_bytes()
    ));
    assert!(!verify(&secrets, PR.as_bytes(), b"not-hex"));
    assert!(!verify(
        &secrets,
        PR.as_bytes(),
        &signature.to_uppercase().as_bytes()[..10]
    ));
}

#[test]
fn ratings_show_as_letters_in_either_metric_family() {
    let analysis: Analysis = serde_json::from_str(PR).unwrap();
    let evaluation = evaluate(&analysis, &QualityConfig::default());
    assert!(evaluation.passed);
    assert_eq!(evaluation.ratings["new_security_rating"], 'A');
    assert_eq!(evaluation.ratings["new_security_review_rating"], 'C');
    assert_eq!(analysis.merge_request_iid(), Some(12));
    assert_eq!(rating_letter("5.0"), Some('E'));
    assert_eq!(rating_letter("0"), None);
}

#[test]
fn required_ratings_fail_a_gate_sonarqube_passed() {
    let analysis: Analysis = serde_json::from_str(PR).unwrap();
    let mut quality = QualityConfig::default();
    quality
        .required_ratings
        .insert("new_security_rating".into(), "A".into());
    quality
        .required_ratings
        .insert("new_security_review_rating".into(), "A".into());
    let evaluation = evaluate(&analysis, &quality);
    assert!(!evaluation.passed);
    assert_eq!(
        evaluation.failures,
        ["security review rating (new code) is C, required A"]
    );
    assert_eq!(evaluation.below_required.len(), 1);
}

fn with_branch(name: &str, kind: &str) -> Analysis {
    let mut value: serde_json::Value = serde_json::from_str(PR).unwrap();
    value["branch"]["name"] = name.into();
    value["branch"]["type"] = kind.into();
    serde_json::from_value(value).unwrap()
}

#[test]
fn a_pull_request_key_is_a_merge_request_iid_or_an_error_never_a_branch() {
    assert_eq!(
        with_branch("PR-5", "PULL_REQUEST").subject(),
        Ok(Subject::MergeRequest(5))
    );
    assert_eq!(
        with_branch("!42", "PULL_REQUEST").subject(),
        Ok(Subject::MergeRequest(42))
    );
    assert_eq!(
        with_branch("release-2", "BRANCH").subject(),
        Ok(Subject::Branch("release-2"))
    );
    for bad in [
        "PR-99999999999999999999999",
        "PR-abc",
        "PR-0",
        "",
        "9223372036854775808",
    ] {
        let analysis = with_branch(bad, "PULL_REQUEST");
        let subject = analysis.subject();
        assert!(subject.is_err(), "{bad}: {subject:?}");
    }
    let max = format!("PR-{}", i64::MAX);
    assert_eq!(
        with_branch(&max, "PULL_REQUEST").subject(),
        Ok(Subject::MergeRequest(i64::MAX))
    );
}

#[test]
fn the_analysis_time_is_analysed_at_else_changed_at() {
    let mut value: serde_json::Value = serde_json::from_str(PR).unwrap();
    value["analysedAt"] = "2026-12-04T04:33:01+0000".into();
    value["changedAt"] = "2026-12-04T04:40:00+0000".into();
    let analysis: Analysis = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(
        analysis.analysis_time_ms(),
        time::unix_ms("2026-12-04T04:33:01Z")
    );
    value.as_object_mut().unwrap().remove("analysedAt");
    let analysis: Analysis = serde_json::from_value(value).unwrap();
    assert_eq!(
        analysis.analysis_time_ms(),
        time::unix_ms("2026-12-04T04:40:00Z")
    );
}
