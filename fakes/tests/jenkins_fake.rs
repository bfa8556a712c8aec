//! Drives the fake Jenkins over real HTTP and checks it is as strict as a real controller.

mod jenkins_support;

use ci_bridge_fakes::jenkins::{JenkinsOptions, QueueItemState};
use jenkins_support::{location, options, wait_for, Harness, PUBLIC, TOKEN, USER};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use std::time::Duration;

#[tokio::test]
async fn trigger_answers_201_with_queue_location_under_the_public_url() {
    let h = Harness::start(options()).await;
    h.jenkins
        .add_job("team/app-ci", &["SHA", "BRIDGE_REQUEST_ID"]);

    let path = "/job/team/job/app-ci/buildWithParameters?delay=0sec";
    let response = h
        .post(path, &[("SHA", "abc"), ("BRIDGE_REQUEST_ID", "r1")])
        .await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let location = location(&response);
    assert_eq!(response.text().await.unwrap(), "");
    let id = h.jenkins.triggers()[0].queue_id.expect("queue id");
    assert_eq!(location, format!("{PUBLIC}/queue/item/{id}/"));
}

#[tokio::test]
async fn identical_parameters_merge_into_the_queued_item_with_303() {
    let h = Harness::start(options()).await;
    h.jenkins.add_job("app", &["SHA"]);
    h.jenkins.hold_queue(true);

    let first = h.post("/job/app/buildWithParameters?SHA=a", &[]).await;
    let again = h
        .post("/job/app/buildWithParameters", &[("SHA", "a")])
        .await;
    let other = h
        .post("/job/app/buildWithParameters", &[("SHA", "b")])
        .await;

    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&again), location(&first));
    assert_eq!(other.status(), StatusCode::CREATED);
    assert_ne!(location(&other), location(&first));
    assert_eq!(h.jenkins.queue_items().len(), 2);
}

#[tokio::test]
async fn queue_item_becomes_left_item_with_executable_and_build_finishes() {
    let h = Harness::start(options()).await;
    h.jenkins.add_job("team/app-ci", &["SHA"]);
    h.jenkins.set_result("team/app-ci", "UNSTABLE");
    h.jenkins.hold_queue(true);
    let response = h
        .post(
            "/job/team/job/app-ci/buildWithParameters",
            &[("SHA", "abc")],
        )
        .await;
    let item = location(&response);

    let (status, waiting) = h.api_of(&item).await;
    assert_eq!(status, StatusCode::OK);
    assert!(waiting["why"].as_str().is_some());
    assert_eq!(waiting["params"], "\nSHA=abc");
    assert_eq!(
        waiting["actions"][0]["_class"],
        "hudson.model.ParametersAction"
    );
    assert_eq!(
        waiting["task"]["url"],
        format!("{PUBLIC}/job/team/job/app-ci/")
    );
    h.jenkins.hold_queue(false);

    let left = wait_for(|| async {
        let (_, doc) = h.api_of(&item).await;
        (doc["_class"] == "hudson.model.Queue$LeftItem").then_some(doc)
    })
    .await;
    assert_eq!(left["cancelled"], false);
    assert_eq!(left["why"], Value::Null);
    assert_eq!(left["executable"]["number"], 1);
    let build_url = left["executable"]["url"].as_str().unwrap().to_owned();
    assert_eq!(build_url, format!("{PUBLIC}/job/team/job/app-ci/1/"));

    let run = wait_for(|| async {
        let (_, run) = h.api_of(&build_url).await;
        (run["building"] == false).then_some(run)
    })
    .await;
    assert_eq!(run["result"], "UNSTABLE");
    assert_eq!(run["queueId"], left["id"]);
    assert!(run["duration"].as_u64().unwrap() > 0);
    assert_eq!(run["url"], build_url.as_str());
    assert_eq!(run["actions"][0]["parameters"][0]["value"], "abc");
}

#[tokio::test]
async fn unknown_disabled_and_unparameterized_jobs_are_refused() {
    let h = Harness::start(options()).await;
    h.jenkins.add_job("team/app-ci", &["SHA"]);
    h.jenkins.add_unparameterized_job("plain");
    let app = "/job/team/job/app-ci/buildWithParameters";

    let unknown = h.post("/job/nope/buildWithParameters", &[]).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let plain = h.post("/job/plain/buildWithParameters", &[]).await;
    assert_eq!(plain.status(), StatusCode::BAD_REQUEST);
    assert!(plain
        .text()
        .await
        .unwrap()
        .contains("plain is not parameterized"));

    let twice = h.post(&format!("{app}?SHA=a"), &[("SHA", "b")]).await;
    assert_eq!(twice.status(), StatusCode::BAD_REQUEST);

    let (by_get, _) = h.get(app).await;
    assert_eq!(by_get, StatusCode::METHOD_NOT_ALLOWED);

    h.jenkins.set_disabled("team/app-ci", true);
    let disabled = h.post(app, &[]).await;
    assert_eq!(disabled.status(), StatusCode::CONFLICT);
    assert!(disabled
        .text()
        .await
        .unwrap()
        .contains("team/app-ci is not buildable"));

    let codes: Vec<u16> = h.jenkins.triggers().iter().map(|t| t.status).collect();
    assert_eq!(codes, [404, 400, 400, 409]);
    assert!(h.jenkins.queue_items().is_empty());
}

#[tokio::test]
async fn undefined_parameters_are_dropped_and_missing_ones_default_to_empty() {
    let h = Harness::start(options()).await;
    h.jenkins.add_job("app", &["SHA", "REF"]);

    let path = "/job/app/buildWithParameters?delay=0";
    let response = h.post(path, &[("SHA", "abc"), ("EXTRA", "x")]).await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let build = h.first_build().await;
    let params: Vec<(&str, &str)> = build
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(params, [("REF", ""), ("SHA", "abc")]);
    assert_eq!(h.jenkins.triggers()[0].params["EXTRA"], "x");
}

#[tokio::test]
async fn password_mode_crumb_is_bound_to_the_http_session() {
    let opts = JenkinsOptions {
        password_mode: true,
        ..options()
    };
    let bare = Harness::start(opts.clone()).await;
    bare.jenkins.add_job("app", &["SHA"]);
    let trigger = "/job/app/buildWithParameters";

    // Without a cookie jar the session cookie is lost, so the crumb is useless.
    let issued = bare
        .client
        .get(bare.url("/crumbIssuer/api/json"))
        .basic_auth(USER, Some(TOKEN))
        .send()
        .await
        .unwrap();
    let cookie = issued.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("JSESSIONID."));
    let doc: Value = issued.json().await.unwrap();
    assert_eq!(doc["_class"], "hudson.security.csrf.DefaultCrumbIssuer");
    assert_eq!(doc["crumbRequestField"], "Jenkins-Crumb");
    let crumb = doc["crumb"].as_str().unwrap().to_owned();

    let no_cookie = bare.post_with(trigger, &[], Some(&crumb)).await;
    assert_eq!(no_cookie.status(), StatusCode::FORBIDDEN);
    let text = no_cookie.text().await.unwrap();
    assert!(text.contains("No valid crumb was included in the request"));

    // With a cookie jar it works; a crumb from another session or none at all does not.
    let jar = Harness::with_cookies(opts, true).await;
    jar.jenkins.add_job("app", &["SHA"]);
    let (_, doc) = jar.get("/crumbIssuer/api/json").await;
    let own = doc["crumb"].as_str().unwrap().to_owned();
    let foreign = jar.post_with(trigger, &[], Some(&crumb)).await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert_eq!(jar.post(trigger, &[]).await.status(), StatusCode::FORBIDDEN);
    let ok = jar.post_with(trigger, &[], Some(&own)).await;
    assert_eq!(ok.status(), StatusCode::CREATED);

    // A restart drops the session, so the old crumb stops working.
    jar.jenkins.restart();
    let stale = jar.post_with(trigger, &[("SHA", "b")], Some(&own)).await;
    assert_eq!(stale.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn api_token_posts_need_no_crumb() {
    let h = Harness::start(options()).await;
    h.jenkins.add_job("app", &["SHA"]);

    let response = h.post("/job/app/buildWithParameters", &[]).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn missing_or_wrong_credentials_get_401() {
    let h = Harness::start(options()).await;
    h.jenkins.add_job("app", &["SHA"]);
    let url = h.url("/job/app/api/json");

    let anonymous = h.client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let wrong = h.client.get(&url).basic_auth(USER, Some("nope"));
    assert_eq!(
        wrong.send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    let trigger = h.url("/job/app/buildWithParameters");
    let other_user = h.client.post(trigger).basic_auth("other", Some(TOKEN));
    assert_eq!(
        other_user.send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(h.jenkins.triggers()[0].status, 401);
    assert!(h.jenkins.queue_items().is_empty());
}

#[tokio::test]
async fn cancel_item_answers_204_then_422_and_404_for_unknown_ids() {
    let h = Harness::start(options()).await;
    h.jenkins.add_job("app", &["SHA"]);
    h.jenkins.hold_queue(true);
    let response = h.post("/job/app/buildWithParameters", &[]).await;
    let id = h.jenkins.triggers()[0].queue_id.unwrap();

    let status = |r: Response| r.status();
    let path = |id: u64| format!("/queue/cancelItem?id={id}");
    assert_eq!(status(h.post(&path(id), &[]).await), StatusCode::NO_CONTENT);
    assert_eq!(
        status(h.post(&path(id), &[]).await),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        status(h.post(&path(9999), &[]).await),
        StatusCode::NOT_FOUND
    );

    let (_, item) = h.api_of(&location(&response)).await;
    assert_eq!(item["_class"], "hudson.model.Queue$LeftItem");
    assert_eq!(item["cancelled"], true);
    assert_eq!(item["executable"], Value::Null);
    h.jenkins.hold_queue(false);
    assert!(h.jenkins.builds().is_empty());
}

#[tokio::test]
async fn multibranch_branch_job_is_addressed_with_its_name_encoded_again() {
    let h = Harness::start(options()).await;
    h.jenkins.add_job("group/app/feature%2Fx", &["SHA"]);
    let job = "/job/group/job/app/job/feature%252Fx";

    let single = h
        .post(
            "/job/group/job/app/job/feature%2Fx/buildWithParameters",
            &[],
        )
        .await;
    assert_eq!(single.status(), StatusCode::NOT_FOUND);

    let double = h
        .post(&format!("{job}/buildWithParameters?delay=0sec"), &[])
        .await;
    assert_eq!(double.status(), StatusCode::CREATED);
    assert_eq!(h.jenkins.triggers()[1].job, "group/app/feature%2Fx");

    let build = h.first_build().await;
    let want = format!("{PUBLIC}/job/group/job/app/job/feature%252Fx/1/");
    assert_eq!(build.url, want);
    let (_, doc) = h.get(&format!("{job}/api/json")).await;
    assert_eq!(doc["name"], "feature%2Fx");
    assert_eq!(doc["fullName"], "group/app/feature%2Fx");
}

#[tokio::test]
async fn restart_forgets_left_items_keeps_queued_ones_and_aborts_running_builds() {
    let h = Harness::start(options()).await;
    h.jenkins.add_job("app", &["SHA"]);
    h.jenkins.hold_builds(true);
    let started = h
        .post("/job/app/buildWithParameters", &[("SHA", "a")])
        .await;
    h.first_build().await;
    h.jenkins.hold_queue(true);
    let queued = h
        .post("/job/app/buildWithParameters", &[("SHA", "b")])
        .await;

    h.jenkins.restart();

    assert_eq!(h.api_of(&location(&started)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(h.api_of(&location(&queued)).await.0, StatusCode::OK);
    let items = h.jenkins.queue_items();
    assert_eq!(items.len(), 1);
    assert_ne!(items[0].state, QueueItemState::Left);
    let build = &h.jenkins.builds()[0];
    assert!(!build.building);
    assert_eq!(build.result.as_deref(), Some("ABORTED"));
}

#[tokio::test]
async fn stop_aborts_a_running_build_and_redirects_to_it() {
    let h = Harness::start(options()).await;
    h.jenkins.add_job("app", &["SHA"]);
    h.jenkins.hold_builds(true);
    h.post("/job/app/buildWithParameters?delay=0sec", &[]).await;
    let build = h.first_build().await;
    assert!(build.building);

    let stop = h.post("/job/app/1/stop", &[]).await;
    assert_eq!(stop.status(), StatusCode::FOUND);
    assert_eq!(location(&stop), build.url);
    let (_, run) = h.api_of(&build.url).await;
    assert_eq!(run["building"], false);
    assert_eq!(run["result"], "ABORTED");
}

#[tokio::test]
async fn prefix_mounts_every_path_and_the_public_url_follows_it() {
    let opts = JenkinsOptions {
        prefix: "/jenkins".to_owned(),
        ..options()
    };
    let h = Harness::start(opts).await;
    h.jenkins.add_job("app", &["SHA"]);
    assert!(h.jenkins.base_url().ends_with("/jenkins"));

    let root = h.jenkins.base_url().replace("/jenkins", "");
    let outside = h.client.post(format!("{root}/job/app/buildWithParameters"));
    let outside = outside.basic_auth(USER, Some(TOKEN)).send().await.unwrap();
    assert_eq!(outside.status(), StatusCode::NOT_FOUND);
    let inside = h.post("/job/app/buildWithParameters", &[]).await;
    assert_eq!(inside.status(), StatusCode::CREATED);
    assert!(location(&inside).starts_with(&format!("{PUBLIC}/jenkins/queue/item/")));
}

#[tokio::test]
async fn fail_next_answers_the_injected_status_then_recovers() {
    let h = Harness::start(options()).await;
    h.jenkins.add_job("app", &["SHA"]);
    h.jenkins.fail_next(2, 503);

    for _ in 0..2 {
        let failed = h.post("/job/app/buildWithParameters", &[]).await;
        assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let ok = h.post("/job/app/buildWithParameters", &[]).await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    assert_eq!(h.jenkins.request_count(), 3);
}

#[tokio::test]
async fn queue_and_job_listings_show_items_and_builds_with_parameters() {
    let h = Harness::start(options()).await;
    h.jenkins.add_job("app", &["BRIDGE_REQUEST_ID"]);
    let trigger = "/job/app/buildWithParameters";
    h.post(
        &format!("{trigger}?delay=0sec"),
        &[("BRIDGE_REQUEST_ID", "r1")],
    )
    .await;
    h.jenkins.hold_queue(true);
    h.first_build().await;
    h.post(trigger, &[("BRIDGE_REQUEST_ID", "r2")]).await;

    let (_, queue) = h.get("/queue/api/json?tree=items[id]").await;
    let items = queue["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["actions"][0]["parameters"][0]["value"], "r2");

    let (_, job) = h.get("/job/app/api/json").await;
    assert_eq!(job["buildable"], true);
    assert_eq!(job["builds"][0]["number"], 1);
    assert_eq!(
        job["builds"][0]["actions"][0]["parameters"][0]["value"],
        "r1"
    );
}

#[tokio::test]
async fn left_items_are_forgotten_after_their_ttl() {
    let opts = JenkinsOptions {
        left_item_ttl: Duration::from_millis(30),
        ..options()
    };
    let h = Harness::start(opts).await;
    h.jenkins.add_job("app", &["SHA"]);
    let item = location(&h.post("/job/app/buildWithParameters?delay=0sec", &[]).await);

    h.first_build().await;
    wait_for(|| async { (h.api_of(&item).await.0 == StatusCode::NOT_FOUND).then_some(()) }).await;
    assert!(h.jenkins.queue_items().is_empty());
    assert_eq!(h.jenkins.builds().len(), 1);
}

#[tokio::test]
async fn build_endpoint_takes_the_json_form_field_and_rejects_unknown_names() {
    let h = Harness::start(options()).await;
    h.jenkins.add_job("app", &["SHA"]);

    let json = r#"{"parameter":[{"name":"SHA","value":"abc"}]}"#;
    let ok = h.post("/job/app/build?delay=0sec", &[("json", json)]).await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    assert_eq!(h.first_build().await.params["SHA"], "abc");

    let unknown = r#"{"parameter":{"name":"NOPE","value":"x"}}"#;
    let refused = h.post("/job/app/build", &[("json", unknown)]).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("No such parameter definition: NOPE"));
}
