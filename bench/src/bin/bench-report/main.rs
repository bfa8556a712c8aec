//! `bench-report RESULTS_DIR`: turns the raw runs `run.sh` wrote into `results.md` (the
//! table the README quotes) and `results.csv` (the medians), with ratios against the
//! baselines measured in the same run and each target of issue 7 marked met or missed.

mod data;
mod targets;

use std::{fmt::Write as _, path::PathBuf};

use data::{median, Run};

/// Every server of the closed-loop comparison, in table order, with its label.
pub const SCENARIOS: &[(&str, &str)] = &[
    (
        "bare",
        "bare hyper, 202 without reading (machine's HTTP limit)",
    ),
    (
        "durable-token",
        "durable baseline: token + JSON + SQLite group commit",
    ),
    (
        "durable-hmac",
        "durable baseline: HMAC + JSON + SQLite group commit",
    ),
    ("ci-token", "ci-bridge, SQLite, X-Gitlab-Token"),
    ("ci-signature", "ci-bridge, SQLite, webhook-signature"),
    ("ci-pg-token", "ci-bridge, PostgreSQL, X-Gitlab-Token"),
    (
        "fastapi-hmac",
        "FastAPI + uvicorn (2 workers), HMAC + JSON, no storage",
    ),
];

fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or(anyhow::anyhow!("usage: bench-report RESULTS_DIR"))?,
    );
    let runs = data::runs(&dir)?;
    let checks = data::checks(&dir)?;
    let trigger = data::pairs(&dir.join("trigger.txt"));
    let machine = data::pairs(&dir.join("machine.txt"));
    let notes = std::fs::read_to_string(dir.join("notes.txt")).unwrap_or_default();

    let mut md = String::new();
    let mut csv = String::from(
        "scenario,load,connections,rps,p50_ms,p99_ms,p999_ms,errors,s202,s200,cpu_us_per_req\n",
    );
    let get = |key: &str| machine.get(key).map_or("?", String::as_str);
    writeln!(md, "## Results ({} run, {})\n", get("mode"), get("date"))?;
    writeln!(
        md,
        "Machine: {} cores, {}, Linux {}; ci-bridge at {}; load average {} when the run \
         began. **The load generator runs on the same {} cores as the server**, so every \
         server gets roughly one core: compare ratios from this one run, never absolute \
         figures across runs or machines.\n",
        get("nproc"),
        get("cpu"),
        get("kernel"),
        get("commit"),
        get("load_before"),
        get("nproc")
    )?;

    writeln!(
        md,
        "### Closed loop: wrk -t1 -c64, {} s warm-up, {} s runs, medians\n\n\
         The durable baselines and ci-bridge on SQLite: {} rounds, each running the four \
         one after the other on fresh instances; the other servers: {} runs.\n",
        get("warmup_s"),
        get("duration_s"),
        get("rounds"),
        get("reps")
    )?;
    header(&mut md);
    for (scenario, label) in SCENARIOS {
        if let Some(run) = median(&runs, scenario, "closed", 64) {
            row(&mut md, label, &run)?;
            push_csv(&mut csv, &run)?;
        }
    }

    writeln!(md, "\n### ci-bridge (SQLite, token): concurrency sweep\n")?;
    header(&mut md);
    for connections in [1, 16, 64, 256] {
        let load = if connections == 64 { "closed" } else { "sweep" };
        if let Some(run) = median(&runs, "ci-token", load, connections) {
            row(&mut md, &format!("{connections} connections"), &run)?;
            if load == "sweep" {
                push_csv(&mut csv, &run)?;
            }
        }
    }

    writeln!(
        md,
        "\n### Fixed rate: 2,000 req/s, latency from the scheduled send (corrected)\n\n\
         Baselines and ci-bridge on SQLite: medians of {} alternating rounds; the others: one run.\n",
        get("rate_rounds")
    )?;
    header(&mut md);
    for load in ["rate", "oha"] {
        for (scenario, label) in SCENARIOS {
            if let Some(run) = median(&runs, scenario, load, 64) {
                let tool = if load == "oha" { "oha" } else { "bench-rate" };
                row(&mut md, &format!("{tool}: {label}"), &run)?;
                push_csv(&mut csv, &run)?;
            }
        }
    }

    writeln!(
        md,
        "\n### Stored events and memory (all instances of a server; peak: the largest)\n"
    )?;
    writeln!(md, "| server | answered 202 | rows stored | distinct keys | rows ≥ 202s, no duplicates | RSS idle MB | RSS peak MB |")?;
    writeln!(md, "|---|---|---|---|---|---|---|")?;
    for check in &checks {
        let ok = check.rows >= check.answered_202 && check.rows == check.distinct_keys;
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            check.scenario,
            check.answered_202,
            check.rows,
            check.distinct_keys,
            if ok { "yes" } else { "**NO**" },
            mb(check.rss_idle_kib),
            mb(check.rss_peak_kib)
        )?;
    }

    targets::trigger_table(&mut md, &trigger)?;
    targets::table(&mut md, &runs, &checks, &trigger)?;
    if !notes.trim().is_empty() {
        writeln!(md, "\n### Notes from this run\n\n{}", notes.trim_end())?;
    }

    std::fs::write(dir.join("results.md"), &md)?;
    std::fs::write(dir.join("results.csv"), &csv)?;
    print!("{md}");
    Ok(())
}

fn header(md: &mut String) {
    md.push_str("| server | req/s | p50 ms | p99 ms | p99.9 ms | errors | 202 | 200 | server CPU µs/req |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|\n");
}

fn row(md: &mut String, label: &str, run: &Run) -> std::fmt::Result {
    let cpu = if run.cpu_us.is_finite() {
        format!("{:.1}", run.cpu_us)
    } else {
        "–".to_owned()
    };
    writeln!(
        md,
        "| {label} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {cpu} |",
        run.rps(),
        run.p50_ms,
        run.p99_ms,
        run.p999_ms,
        run.errors,
        run.s202,
        run.s200,
    )
}

fn push_csv(csv: &mut String, run: &Run) -> std::fmt::Result {
    writeln!(
        csv,
        "{},{},{},{:.0},{:.3},{:.3},{:.3},{},{},{},{:.2}",
        run.scenario,
        run.load,
        run.connections,
        run.rps(),
        run.p50_ms,
        run.p99_ms,
        run.p999_ms,
        run.errors,
        run.s202,
        run.s200,
        run.cpu_us
    )
}

/// KiB as MB with one decimal, or `-` when not measured.
pub fn mb(kib: u64) -> String {
    if kib == 0 {
        "-".into()
    } else {
        format!("{:.1}", kib as f64 / 1024.0)
    }
}
