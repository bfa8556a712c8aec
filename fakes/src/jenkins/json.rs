//! The JSON documents the fake Jenkins serves, shaped like Jenkins' `@Exported` beans.

use std::time::Instant;

use percent_encoding::percent_decode_str;
use serde_json::{json, Value};

use super::state::{Build, ItemState, Job, QueueItem, State};

const JOB_CLASS: &str = "org.jenkinsci.plugins.workflow.job.WorkflowJob";
const RUN_CLASS: &str = "org.jenkinsci.plugins.workflow.job.WorkflowRun";
const FOLDER_CLASS: &str = "com.cloudbees.hudson.plugins.folder.Folder";

/// `GET /queue/item/<id>/api/json`.
pub(crate) fn queue_item(st: &State, item: &QueueItem, now: Instant) -> Value {
    let mut doc = json!({
        "actions": item_actions(st, &item.params),
        "blocked": false,
        "buildable": false,
        "id": item.id,
        "inQueueSince": st.clock.epoch_ms(item.in_queue_since),
        "params": params_string(&item.params),
        "stuck": false,
        "task": task(st, &item.job),
        "url": format!("queue/item/{}/", item.id),
    });
    let fields = doc.as_object_mut().expect("object literal");

    match item.state {
        ItemState::Queued { due } if due > now => {
            let left = due.saturating_duration_since(now);
            let left_ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
            fields.insert("_class".into(), "hudson.model.Queue$WaitingItem".into());
            fields.insert(
                "why".into(),
                format!("In the quiet period. Expires in {}", time_span(left_ms)).into(),
            );
            fields.insert("timestamp".into(), st.clock.epoch_ms(due).into());
        }
        ItemState::Queued { due } => {
            fields.insert("_class".into(), "hudson.model.Queue$BuildableItem".into());
            fields.insert("buildable".into(), true.into());
            fields.insert("why".into(), "Waiting for next available executor".into());
            fields.insert("pending".into(), false.into());
            fields.insert(
                "buildableStartMilliseconds".into(),
                st.clock.epoch_ms(due).into(),
            );
        }
        ItemState::Left {
            cancelled, build, ..
        } => {
            fields.insert("_class".into(), "hudson.model.Queue$LeftItem".into());
            fields.insert("why".into(), Value::Null);
            fields.insert("cancelled".into(), cancelled.into());
            let executable = match build {
                Some(number) => json!({
                    "_class": RUN_CLASS,
                    "number": number,
                    "url": st.build_url(&item.job, number),
                }),
                None => Value::Null,
            };
            fields.insert("executable".into(), executable);
        }
    }
    doc
}

/// `GET /queue/api/json`: the items still in the queue.
pub(crate) fn queue(st: &State, now: Instant) -> Value {
    let items: Vec<Value> = st
        .queue
        .values()
        .filter(|item| item.in_queue())
        .map(|item| queue_item(st, item, now))
        .collect();
    json!({"_class": "hudson.model.Queue", "discoverableItems": [], "items": items})
}

/// `GET /job/…/<n>/api/json`.
pub(crate) fn run(st: &State, name: &str, build: &Build) -> Value {
    let building = build.building();
    let estimated_ms = u64::try_from(st.settings.build_duration.as_millis()).unwrap_or(u64::MAX);
    let executor = if building {
        json!({"_class": "hudson.model.OneOffExecutor"})
    } else {
        Value::Null
    };
    json!({
        "_class": RUN_CLASS,
        "actions": item_actions(st, &build.params),
        "artifacts": [],
        "building": building,
        "description": null,
        "displayName": format!("#{}", build.number),
        "duration": build.duration_ms(),
        "estimatedDuration": estimated_ms,
        "executor": executor,
        "fullDisplayName": format!("{} #{}", full_display_name(name), build.number),
        "id": build.number.to_string(),
        "keepLog": false,
        "number": build.number,
        "queueId": build.queue_id,
        "result": if building { Value::Null } else { build.result.clone().into() },
        "timestamp": st.clock.epoch_ms(build.started),
        "url": st.build_url(name, build.number),
        "changeSets": [],
        "culprits": [],
        "inProgress": building,
    })
}

/// `GET /job/…/api/json` for a job.
pub(crate) fn job(st: &State, name: &str, job: &Job) -> Value {
    let builds: Vec<Value> = job
        .builds
        .iter()
        .rev()
        .map(|b| {
            json!({
                "_class": RUN_CLASS,
                "number": b.number,
                "url": st.build_url(name, b.number),
                "result": if b.building() { Value::Null } else { b.result.clone().into() },
                "building": b.building(),
                "queueId": b.queue_id,
                "actions": item_actions(st, &b.params),
            })
        })
        .collect();
    let link = |b: Option<&Build>| match b {
        Some(b) => {
            json!({"_class": RUN_CLASS, "number": b.number, "url": st.build_url(name, b.number)})
        }
        None => Value::Null,
    };
    let in_queue = st.queue.values().any(|i| i.in_queue() && i.job == name);
    let definitions: Vec<Value> = job
        .params
        .iter()
        .flatten()
        .map(|p| {
            json!({
                "_class": "hudson.model.StringParameterDefinition",
                "defaultParameterValue": string_value(p, ""),
                "description": null,
                "name": p,
                "type": "StringParameterDefinition",
            })
        })
        .collect();
    let property: Vec<Value> = if job.params.is_some() {
        vec![json!({
            "_class": "hudson.model.ParametersDefinitionProperty",
            "parameterDefinitions": definitions,
        })]
    } else {
        Vec::new()
    };

    json!({
        "_class": JOB_CLASS,
        "actions": [],
        "description": null,
        "displayName": display_name(last_segment(name)),
        "fullDisplayName": full_display_name(name),
        "fullName": name,
        "name": last_segment(name),
        "url": st.job_url(name),
        "buildable": !job.disabled,
        "builds": builds,
        "color": color(job),
        "disabled": job.disabled,
        "firstBuild": link(job.builds.first()),
        "inQueue": in_queue,
        "lastBuild": link(job.builds.last()),
        "lastCompletedBuild": link(job.builds.iter().rev().find(|b| !b.building())),
        "nextBuildNumber": job.next_number,
        "property": property,
        "concurrentBuild": true,
    })
}

/// `GET /job/…/api/json` for a folder (a prefix of job names).
pub(crate) fn folder(st: &State, name: &str) -> Value {
    json!({
        "_class": FOLDER_CLASS,
        "actions": [],
        "description": null,
        "displayName": display_name(last_segment(name)),
        "fullDisplayName": full_display_name(name),
        "fullName": name,
        "name": last_segment(name),
        "url": st.job_url(name),
        "jobs": children(st, Some(name)),
    })
}

/// `GET /api/json`.
pub(crate) fn root(st: &State) -> Value {
    json!({
        "_class": "hudson.model.Hudson",
        "mode": "NORMAL",
        "nodeDescription": "the Jenkins controller's built-in node",
        "nodeName": "",
        "numExecutors": 2,
        "jobs": children(st, None),
        "quietingDown": false,
        "url": format!("{}/", st.settings.public_url),
        "useCrumbs": true,
        "useSecurity": true,
    })
}

/// Whether `name` is a folder: a proper prefix of some job's full name.
pub(crate) fn is_folder(st: &State, name: &str) -> bool {
    let prefix = format!("{name}/");
    st.jobs.keys().any(|job| job.starts_with(&prefix))
}

fn children(st: &State, parent: Option<&str>) -> Vec<Value> {
    let prefix = parent.map(|p| format!("{p}/")).unwrap_or_default();
    let mut names: Vec<String> = st
        .jobs
        .keys()
        .filter_map(|job| job.strip_prefix(&prefix))
        .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned())
        .collect();
    names.dedup();

    names
        .into_iter()
        .map(|child| {
            let full = format!("{prefix}{child}");
            let url = st.job_url(&full);
            match st.jobs.get(&full) {
                Some(job) => {
                    json!({"_class": JOB_CLASS, "name": child, "url": url, "color": color(job)})
                }
                None => json!({"_class": FOLDER_CLASS, "name": child, "url": url}),
            }
        })
        .collect()
}

fn task(st: &State, name: &str) -> Value {
    let color = st.jobs.get(name).map_or("notbuilt".to_owned(), color);
    let url = st.job_url(name);
    json!({"_class": JOB_CLASS, "name": last_segment(name), "url": url, "color": color})
}

fn item_actions(st: &State, params: &Option<Vec<(String, String)>>) -> Vec<Value> {
    let mut actions = Vec::new();
    if let Some(params) = params {
        let values: Vec<Value> = params.iter().map(|(n, v)| string_value(n, v)).collect();
        actions.push(json!({"_class": "hudson.model.ParametersAction", "parameters": values}));
    }
    let user = &st.settings.user;
    actions.push(json!({
        "_class": "hudson.model.CauseAction",
        "causes": [{
            "_class": "hudson.model.Cause$UserIdCause",
            "shortDescription": format!("Started by user {user}"),
            "userId": user,
            "userName": user,
        }],
    }));
    actions
}

/// The queue item's `params` string: `"\nname=value"` per parameter.
fn params_string(params: &Option<Vec<(String, String)>>) -> String {
    params
        .iter()
        .flatten()
        .map(|(name, value)| format!("\n{name}={value}"))
        .collect()
}

/// The ball colour of a job, from its last build; `_anime` while one is running.
fn color(job: &Job) -> String {
    if job.disabled {
        return "disabled".to_owned();
    }
    let Some(last) = job.builds.last() else {
        return "notbuilt".to_owned();
    };
    let finished = job.builds.iter().rev().find(|b| !b.building());
    let base = match finished.map(|b| b.result.as_str()) {
        None => "notbuilt",
        Some("SUCCESS") => "blue",
        Some("UNSTABLE") => "yellow",
        Some("FAILURE") => "red",
        Some("ABORTED") => "aborted",
        Some(_) => "notbuilt",
    };
    if last.building() {
        format!("{base}_anime")
    } else {
        base.to_owned()
    }
}

fn string_value(name: &str, value: &str) -> Value {
    json!({"_class": "hudson.model.StringParameterValue", "name": name, "value": value})
}

fn last_segment(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// A branch job's display name is its branch name: the stored name, decoded.
fn display_name(stored: &str) -> String {
    percent_decode_str(stored).decode_utf8_lossy().into_owned()
}

fn full_display_name(name: &str) -> String {
    name.split('/')
        .map(display_name)
        .collect::<Vec<_>>()
        .join(" » ")
}

/// A duration the way `Util.getTimeSpanString` words short spans.
fn time_span(ms: u64) -> String {
    let secs = ms / 1000;
    if secs >= 60 {
        format!("{} min {} sec", secs / 60, secs % 60)
    } else if secs >= 10 {
        format!("{secs} sec")
    } else if secs >= 1 {
        format!("{secs}.{} sec", (ms % 1000) / 100)
    } else {
        format!("{ms} ms")
    }
}
