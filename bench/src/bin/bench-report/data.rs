//! Reading what `run.sh` wrote: raw load runs, storage checks, trigger-latency figures and
//! the machine description.

use std::{collections::BTreeMap, path::Path};

/// One measured load run (warm-ups are not written).
#[derive(Clone, Debug)]
pub struct Run {
    pub scenario: String,
    /// `closed` (wrk at fixed concurrency), `sweep`, `rate` (bench-rate) or `oha`.
    pub load: String,
    pub connections: u32,
    pub requests: f64,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub s202: f64,
    pub s200: f64,
    /// Transport errors plus answers other than 200 and 202.
    pub errors: f64,
    /// Server CPU time (user + system) per completed request, in µs; NaN when unknown.
    pub cpu_us: f64,
}

impl Run {
    pub fn rps(&self) -> f64 {
        self.requests / self.seconds
    }
}

/// Rows stored after a scenario, against the answers it gave.
#[derive(Clone, Debug)]
pub struct Check {
    pub scenario: String,
    pub answered_202: u64,
    pub rows: u64,
    pub distinct_keys: u64,
    pub rss_idle_kib: u64,
    pub rss_peak_kib: u64,
}

fn rows(path: &Path) -> anyhow::Result<Vec<BTreeMap<String, String>>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(Vec::new());
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    Ok(lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            header
                .iter()
                .zip(line.split(','))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect())
}

fn num(row: &BTreeMap<String, String>, key: &str) -> f64 {
    row.get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// `raw.csv`: one line per run, as printed by wrk's script or bench-rate, plus CPU ticks.
pub fn runs(dir: &Path) -> anyhow::Result<Vec<Run>> {
    let mut runs = Vec::new();
    for row in rows(&dir.join("raw.csv"))? {
        let requests = num(&row, "requests");
        let ticks = num(&row, "cpu_ticks");
        let hz = num(&row, "clk_tck");
        let errors = num(&row, "errors") + num(&row, "sother");
        runs.push(Run {
            scenario: row["scenario"].clone(),
            load: row["load"].clone(),
            connections: num(&row, "connections") as u32,
            requests,
            seconds: num(&row, "duration_us") / 1e6,
            p50_ms: num(&row, "p50_us") / 1e3,
            p99_ms: num(&row, "p99_us") / 1e3,
            p999_ms: num(&row, "p999_us") / 1e3,
            s202: num(&row, "s202"),
            s200: num(&row, "s200"),
            errors,
            cpu_us: ticks / hz * 1e6 / requests,
        });
    }
    Ok(runs)
}

/// `checks.csv`: one line per server instance, summed here per scenario (peaks: the
/// largest instance's).
pub fn checks(dir: &Path) -> anyhow::Result<Vec<Check>> {
    let mut merged: Vec<Check> = Vec::new();
    for row in rows(&dir.join("checks.csv"))? {
        let value = |key: &str| num(&row, key) as u64;
        let scenario = row["scenario"].clone();
        let index = match merged.iter().position(|c| c.scenario == scenario) {
            Some(index) => index,
            None => {
                merged.push(Check {
                    scenario,
                    answered_202: 0,
                    rows: 0,
                    distinct_keys: 0,
                    rss_idle_kib: 0,
                    rss_peak_kib: 0,
                });
                merged.len() - 1
            }
        };
        let check = &mut merged[index];
        check.answered_202 += value("answered_202");
        check.rows += value("rows");
        check.distinct_keys += value("distinct_keys");
        check.rss_idle_kib = check.rss_idle_kib.max(value("rss_idle_kib"));
        check.rss_peak_kib = check.rss_peak_kib.max(value("rss_peak_kib"));
    }
    Ok(merged)
}

/// A `key=value` file (trigger.txt, machine.txt); missing file, no keys.
pub fn pairs(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The median of the runs matching `scenario`, `load` and `connections`.
pub fn median(runs: &[Run], scenario: &str, load: &str, connections: u32) -> Option<Run> {
    let matching: Vec<&Run> = runs
        .iter()
        .filter(|r| r.scenario == scenario && r.load == load && r.connections == connections)
        .collect();
    if matching.is_empty() {
        return None;
    }
    let mid = |values: &mut Vec<f64>| {
        values.sort_by(|a, b| a.total_cmp(b));
        values[values.len() / 2]
    };
    let pick = |f: &dyn Fn(&Run) -> f64| mid(&mut matching.iter().map(|r| f(r)).collect());
    let total = |f: &dyn Fn(&Run) -> f64| matching.iter().map(|r| f(r)).sum::<f64>();
    let mut run = matching[0].clone();
    run.requests = pick(&|r| r.rps());
    run.seconds = 1.0;
    run.p50_ms = pick(&|r| r.p50_ms);
    run.p99_ms = pick(&|r| r.p99_ms);
    run.p999_ms = pick(&|r| r.p999_ms);
    run.cpu_us = pick(&|r| r.cpu_us);
    run.s202 = total(&|r| r.s202);
    run.s200 = total(&|r| r.s200);
    run.errors = total(&|r| r.errors);
    Some(run)
}
