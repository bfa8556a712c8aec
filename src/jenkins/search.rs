//! Shapes of the Jenkins queue and job listings that are searched for a build by its
//! `CI_BRIDGE_BUILD_ID` parameter.

use serde::Deserialize;

use crate::jenkins::params::BUILD_ID_PARAM;

#[derive(Deserialize)]
pub struct Queue {
    #[serde(default)]
    pub items: Vec<Item>,
}

#[derive(Deserialize)]
pub struct Item {
    pub id: i64,
    #[serde(default)]
    pub actions: Vec<Action>,
}

#[derive(Deserialize)]
pub struct Job {
    #[serde(default)]
    pub builds: Vec<Run>,
}

#[derive(Deserialize)]
pub struct Run {
    pub number: i64,
    /// Start time, ms since the epoch.
    #[serde(default)]
    pub timestamp: Option<i64>,
    #[serde(default)]
    pub actions: Vec<Action>,
}

#[derive(Deserialize, Default)]
pub struct Action {
    #[serde(default)]
    pub parameters: Vec<Parameter>,
}

#[derive(Deserialize)]
pub struct Parameter {
    pub name: String,
    pub value: Option<serde_json::Value>,
}

pub fn carries(actions: &[Action], build_id: &str) -> bool {
    actions.iter().flat_map(|a| &a.parameters).any(|p| {
        p.name == BUILD_ID_PARAM && p.value.as_ref().and_then(|v| v.as_str()) == Some(build_id)
    })
}
