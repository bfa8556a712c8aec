//! The targets of issue 7, each measured against the baselines of the same run and marked
//! met or missed, with by how much.

use std::{collections::BTreeMap, fmt::Write as _};

use crate::data::{median, Check, Run};

/// Which way a target points.
enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

struct Line<'a> {
    what: &'a str,
    measured: Option<f64>,
    unit: &'a str,
    goal: Goal,
}

pub fn table(
    md: &mut String,
    runs: &[Run],
    checks: &[Check],
    trigger: &BTreeMap<String, String>,
) -> std::fmt::Result {
    let closed = |s: &str| median(runs, s, "closed", 64);
    let rate = |s: &str| median(runs, s, "rate", 64);
    let ratio = |a: &str, b: &str| Some(closed(a)?.rps() / closed(b)?.rps());
    let cpu_delta = |a: &str, b: &str| Some(closed(a)?.cpu_us - closed(b)?.cpu_us);
    let figure = |key: &str| trigger.get(key).and_then(|v| v.parse::<f64>().ok());
    let ci_errors: f64 = runs
        .iter()
        .filter(|r| r.scenario.starts_with("ci-"))
        .map(|r| r.errors)
        .sum();
    let ci_checks = || checks.iter().filter(|c| c.scenario.starts_with("ci-"));
    let max_mb = |values: Vec<u64>| {
        let max = values.into_iter().max().unwrap_or(0);
        (max > 0).then(|| max as f64 / 1024.0)
    };
    let rss_idle = max_mb(
        ci_checks()
            .map(|c| c.rss_idle_kib)
            .chain(figure("rss_idle_kib").map(|v| v as u64))
            .collect(),
    );
    let rss_load = max_mb(ci_checks().map(|c| c.rss_peak_kib).collect());
    let stored_ok = checks
        .iter()
        .all(|c| c.rows >= c.answered_202 && c.rows == c.distinct_keys);

    let lines = [
        Line {
            what: "ci-bridge token ÷ durable baseline token (req/s)",
            measured: ratio("ci-token", "durable-token"),
            unit: "×",
            goal: Goal::AtLeast(1.0),
        },
        Line {
            what: "ci-bridge signature ÷ durable baseline HMAC (req/s)",
            measured: ratio("ci-signature", "durable-hmac"),
            unit: "×",
            goal: Goal::AtLeast(1.0),
        },
        Line {
            what: "ci-bridge signature ÷ FastAPI HMAC (req/s)",
            measured: ratio("ci-signature", "fastapi-hmac"),
            unit: "×",
            goal: Goal::AtLeast(2.0),
        },
        Line {
            what: "CPU µs/req: ci-bridge token − durable token",
            measured: cpu_delta("ci-token", "durable-token"),
            unit: " µs",
            goal: Goal::AtMost(10.0),
        },
        Line {
            what: "CPU µs/req: ci-bridge signature − durable HMAC",
            measured: cpu_delta("ci-signature", "durable-hmac"),
            unit: " µs",
            goal: Goal::AtMost(10.0),
        },
        Line {
            what: "p99 at 2,000 req/s, ci-bridge token",
            measured: rate("ci-token").map(|r| r.p99_ms),
            unit: " ms",
            goal: Goal::AtMost(5.0),
        },
        Line {
            what: "p99 at 2,000 req/s, ci-bridge signature",
            measured: rate("ci-signature").map(|r| r.p99_ms),
            unit: " ms",
            goal: Goal::AtMost(5.0),
        },
        Line {
            what: "errors in all ci-bridge runs (transport + non-2xx)",
            measured: Some(ci_errors),
            unit: "",
            goal: Goal::AtMost(0.0),
        },
        Line {
            what: "webhook → Jenkins trigger p50, idle queue",
            measured: figure("idle_p50_ms"),
            unit: " ms",
            goal: Goal::AtMost(10.0),
        },
        Line {
            what: "RSS idle (largest ci-bridge instance)",
            measured: rss_idle,
            unit: " MB",
            goal: Goal::AtMost(40.0),
        },
        Line {
            what: "RSS under the c64 load (peak, largest instance)",
            measured: rss_load,
            unit: " MB",
            goal: Goal::AtMost(100.0),
        },
        Line {
            what: "start-up to ready, fresh database",
            measured: figure("ready_ms"),
            unit: " ms",
            goal: Goal::AtMost(200.0),
        },
        Line {
            what: "start-up to ready, database after the backlog",
            measured: figure("ready_restart_ms"),
            unit: " ms",
            goal: Goal::AtMost(200.0),
        },
        Line {
            what: "every server: rows ≥ 202 answers, no duplicates (1 = yes)",
            measured: Some(if stored_ok { 1.0 } else { 0.0 }),
            unit: "",
            goal: Goal::AtLeast(1.0),
        },
    ];

    writeln!(md, "\n### Targets (issue 7)\n")?;
    writeln!(md, "| target | measured | goal | verdict |")?;
    writeln!(md, "|---|---|---|---|")?;
    for line in &lines {
        let (goal, verdict) = judge(line);
        let measured = line.measured.map_or("not measured".to_owned(), |v| {
            format!("{v:.2}{}", line.unit)
        });
        writeln!(md, "| {} | {measured} | {goal} | {verdict} |", line.what)?;
    }
    if let Some(pg) = ratio("ci-pg-token", "durable-token") {
        writeln!(
            md,
            "| ci-bridge PostgreSQL token ÷ durable SQLite baseline (no target) | {pg:.2}× | – | – |"
        )?;
    }
    Ok(())
}

fn judge(line: &Line<'_>) -> (String, String) {
    let unit = line.unit;
    let (goal, shortfall) = match line.goal {
        Goal::AtLeast(g) => (format!("≥ {g}{unit}"), line.measured.map(|v| g - v)),
        Goal::AtMost(g) => (format!("≤ {g}{unit}"), line.measured.map(|v| v - g)),
    };
    let verdict = match shortfall {
        None => "not measured".to_owned(),
        Some(s) if s <= 0.0 => "met".to_owned(),
        Some(s) => format!("**missed** by {s:.2}{unit}"),
    };
    (goal, verdict)
}

pub fn trigger_table(md: &mut String, t: &BTreeMap<String, String>) -> std::fmt::Result {
    if t.is_empty() {
        return writeln!(md, "\n(Trigger latency was not measured in this run.)");
    }
    let get = |key: &str| t.get(key).map_or("?", String::as_str);
    writeln!(
        md,
        "\n### Webhook → Jenkins trigger (fakes in-process, ci-bridge release binary)\n"
    )?;
    writeln!(md, "| measurement | p50 ms | p99 ms | count |")?;
    writeln!(md, "|---|---|---|---|")?;
    writeln!(
        md,
        "| idle queue, one event at a time | {} | {} | {} of {} |",
        get("idle_p50_ms"),
        get("idle_p99_ms"),
        get("idle_triggered"),
        get("idle_probes")
    )?;
    writeln!(
        md,
        "| backlog: each of the burst's events (send → trigger) | {} | {} | {} of {} |",
        get("backlog_p50_ms"),
        get("backlog_p99_ms"),
        get("backlog_triggered"),
        get("backlog_events")
    )?;
    writeln!(
        md,
        "| during the backlog: events of another project | {} | {} | – |",
        get("backlog_other_project_p50_ms"),
        get("backlog_other_project_p99_ms")
    )?;
    let events: f64 = get("backlog_events").parse().unwrap_or(0.0);
    let rate: f64 = get("drain_rate_per_s").parse().unwrap_or(0.0);
    let drain = if get("drain_complete") == "true" {
        format!("every build triggered after {} s (drain)", get("drain_s"))
    } else {
        format!(
            "**not drained**: {} of them triggered within {} s, {rate:.1} per second; at that \
             rate the whole burst needs about {:.0} s",
            get("backlog_triggered"),
            get("drain_s"),
            events / rate.max(0.001)
        )
    };
    writeln!(
        md,
        "\nBurst of {} events on one project: posted in {} s; {drain}. RSS idle {} MB, peak \
         during the burst {} MB. Ready after start: {} ms on a fresh database, {} ms on the \
         database after the burst. Jenkins builds started: {}.",
        get("backlog_events"),
        get("backlog_post_s"),
        crate::mb(get("rss_idle_kib").parse().unwrap_or(0)),
        crate::mb(get("rss_backlog_peak_kib").parse().unwrap_or(0)),
        get("ready_ms"),
        get("ready_restart_ms"),
        get("jenkins_builds"),
    )
}
