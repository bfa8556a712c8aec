//! Prometheus metrics, kept in memory and rendered as text at `GET /metrics`.
//!
//! Counters and latency histograms are keyed by their label values; the label sets are
//! small and fixed (event kinds, outcomes, reasons, job kinds), so the maps stay small.

use std::{collections::BTreeMap, fmt::Write as _, sync::Mutex, time::Duration};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Families {
    counters: BTreeMap<&'static str, BTreeMap<Labels, u64>>,
    histograms: BTreeMap<&'static str, BTreeMap<Labels, Histogram>>,
}

/// All of ci-bridge's metrics.
#[derive(Default)]
pub struct Metrics {
    families: Mutex<Families>,
}

const HELP: &[(&str, &str, &str)] = &[
    (
        "ci_bridge_webhooks_total",
        "counter",
        "Webhook deliveries by source, event kind and outcome.",
    ),
    (
        "ci_bridge_webhook_rejections_total",
        "counter",
        "Rejected deliveries by source and reason.",
    ),
    (
        "ci_bridge_jobs_total",
        "counter",
        "Jobs run by kind and outcome.",
    ),
    (
        "ci_bridge_job_retries_total",
        "counter",
        "Job failures that will be retried, by kind.",
    ),
    (
        "ci_bridge_dead_letters_total",
        "counter",
        "Jobs that gave up, by kind.",
    ),
    (
        "ci_bridge_outbound_requests_total",
        "counter",
        "Calls to GitLab and Jenkins by system, call and outcome.",
    ),
    (
        "ci_bridge_outbound_request_seconds",
        "histogram",
        "Latency of calls to GitLab and Jenkins.",
    ),
    (
        "ci_bridge_job_seconds",
        "histogram",
        "Time a job took, by kind.",
    ),
];

impl Metrics {
    fn count(&self, name: &'static str, labels: Labels) {
        let mut families = self.families.lock().expect("metrics lock");
        *families
            .counters
            .entry(name)
            .or_default()
            .entry(labels)
            .or_default() += 1;
    }

    fn observe(&self, name: &'static str, labels: Labels, elapsed: Duration) {
        let mut families = self.families.lock().expect("metrics lock");
        families
            .histograms
            .entry(name)
            .or_default()
            .entry(labels)
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    pub fn webhook(&self, source: &'static str, kind: &str, outcome: &'static str) {
        self.count(
            "ci_bridge_webhooks_total",
            vec![
                ("source", source.into()),
                ("kind", kind.into()),
                ("outcome", outcome.into()),
            ],
        );
    }

    pub fn rejection(&self, source: &'static str, reason: &'static str) {
        self.count(
            "ci_bridge_webhook_rejections_total",
            vec![("source", source.into()), ("reason", reason.into())],
        );
    }

    pub fn job_finished(&self, kind: &str, ok: bool, elapsed: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        self.count(
            "ci_bridge_jobs_total",
            vec![("kind", kind.into()), ("outcome", outcome.into())],
        );
        self.observe(
            "ci_bridge_job_seconds",
            vec![("kind", kind.into())],
            elapsed,
        );
    }

    pub fn job_retried(&self, kind: &str) {
        self.count("ci_bridge_job_retries_total", vec![("kind", kind.into())]);
    }

    pub fn job_dead(&self, kind: &str) {
        self.count("ci_bridge_dead_letters_total", vec![("kind", kind.into())]);
    }

    pub fn outbound(&self, system: &'static str, call: &'static str, ok: bool, elapsed: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        self.count(
            "ci_bridge_outbound_requests_total",
            vec![
                ("system", system.into()),
                ("call", call.into()),
                ("outcome", outcome.into()),
            ],
        );
        self.observe(
            "ci_bridge_outbound_request_seconds",
            vec![("system", system.into()), ("call", call.into())],
            elapsed,
        );
    }

    /// The Prometheus text format, with the gauges passed in appended.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let families = self.families.lock().expect("metrics lock");
        let mut out = String::new();
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            if let Some(series) = families.counters.get(name) {
                for (labels, value) in series {
                    let _ = writeln!(out, "{name}{} {value}", render_labels(labels, None));
                }
            }
            if let Some(series) = families.histograms.get(name) {
                for (labels, histogram) in series {
                    for (bound, count) in BUCKETS.iter().zip(histogram.counts) {
                        let le = format!("{bound}");
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {count}",
                            render_labels(labels, Some(&le))
                        );
                    }
                    let inf = render_labels(labels, Some("+Inf"));
                    let plain = render_labels(labels, None);
                    let _ = writeln!(out, "{name}_bucket{inf} {}", histogram.count);
                    let _ = writeln!(out, "{name}_sum{plain} {}", histogram.sum);
                    let _ = writeln!(out, "{name}_count{plain} {}", histogram.count);
                }
            }
        }
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

fn render_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(key, value)| format!("{key}=\"{}\"", escape(value)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
