//! `bench-rate`: an open-loop load generator at a fixed request rate, with latency
//! measured from each request's scheduled send time (so a stalled server is charged for
//! the requests it held up, as oha's `--latency-correction` does).
//!
//! It exists because oha cannot give each request its own `Idempotency-Key` or signature
//! (its `-Z` picks body lines at random), so against ci-bridge an oha run would measure
//! mostly duplicates. `run.sh` runs oha beside it on `bench-bare` as a cross-check.
//!
//! Usage: `bench-rate ADDR RATE SECONDS WARMUP_SECONDS SECRET` (SECRET as `bench-durable`
//! takes it). Prints one `BENCH key=value ...` line, as `gitlab.lua` does for wrk.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use ci_bridge_bench::{
    client::Conn,
    payload::{gitlab_headers, MERGE_REQUEST},
    verify::{sign, Check},
};
use tokio::sync::{mpsc, Mutex};

/// Connections kept open; at 2,000 req/s they cover 32 ms of server stall before a
/// scheduled request waits for a free one (and is charged for the wait).
const CONNECTIONS: usize = 64;

/// How late a scheduled request may still be sent, in seconds: GitLab gives up on a
/// webhook after 10 s, so a request that could not even start by then counts as a timeout
/// (status 1), which also bounds a run against a server that cannot keep up.
const LATE_LIMIT_SECS: u64 = 10;

/// A request's outcome: its status (0 transport error, 1 not sent in time) and its latency
/// from the scheduled send, in µs.
type Sample = (u16, u64);

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() == 5,
        "usage: bench-rate ADDR RATE SECONDS WARMUP_SECONDS SECRET"
    );
    let addr: SocketAddr = args[0].parse()?;
    let rate: f64 = args[1].parse()?;
    let seconds: f64 = args[2].parse()?;
    let warmup: f64 = args[3].parse()?;
    let check = Arc::new(Check::parse(&args[4])?);
    anyhow::ensure!(seconds + warmup <= 600.0, "a run lasts at most 10 minutes");

    let run = format!("{:08x}", std::process::id() ^ (now_secs() as u32));
    let (warm, _) = phase(addr, rate, warmup, &check, &format!("{run}w")).await?;
    let (samples, took) = phase(addr, rate, seconds, &check, &run).await?;
    print_summary(&samples, took, warm.iter().filter(|s| s.0 == 202).count());
    Ok(())
}

/// Sends `rate × seconds` requests on schedule; returns every outcome and how long it took
/// until the last answer.
async fn phase(
    addr: SocketAddr,
    rate: f64,
    seconds: f64,
    check: &Arc<Check>,
    run: &str,
) -> anyhow::Result<(Vec<Sample>, Duration)> {
    let total = (rate * seconds) as u64;
    let (slots, receiver) = mpsc::unbounded_channel::<(u64, Instant)>();
    let receiver = Arc::new(Mutex::new(receiver));
    let start = Instant::now() + Duration::from_millis(50);
    // Paced by a thread, whose sleep is finer than the runtime's 1 ms timer.
    let pacer = std::thread::spawn(move || {
        for index in 0..total {
            let due = start + Duration::from_secs_f64(index as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if slots.send((index, due)).is_err() {
                break;
            }
        }
    });

    let mut workers = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let mut conn = Conn::open(addr).await?;
        let (receiver, check, run) = (receiver.clone(), check.clone(), run.to_owned());
        workers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let next = receiver.lock().await.recv().await;
                let Some((index, due)) = next else { break };
                if due.elapsed() > Duration::from_secs(LATE_LIMIT_SECS) {
                    samples.push((1, 0));
                    continue;
                }
                let status = send(&mut conn, &check, &run, index).await.unwrap_or(0);
                samples.push((status, due.elapsed().as_micros() as u64));
            }
            samples
        }));
    }
    let mut samples = Vec::with_capacity(total as usize);
    for worker in workers {
        samples.extend(worker.await?);
    }
    pacer.join().expect("the pacer does not panic");
    Ok((samples, start.elapsed()))
}

async fn send(conn: &mut Conn, check: &Check, run: &str, index: u64) -> anyhow::Result<u16> {
    let key = format!("{run}-0000-4000-8000-{index:012x}");
    let mut headers = gitlab_headers(&key);
    match check {
        Check::Token(token) => headers.push(("x-gitlab-token", String::from_utf8(token.clone())?)),
        Check::Signature(secret) => {
            let timestamp = now_secs().to_string();
            let signature = sign(secret, &key, &timestamp, MERGE_REQUEST.as_bytes());
            headers.push(("webhook-id", key.clone()));
            headers.push(("webhook-timestamp", timestamp));
            headers.push(("webhook-signature", signature));
        }
    }
    let body = Bytes::from_static(MERGE_REQUEST.as_bytes());
    Ok(conn.send("POST", "/hooks/gitlab", &headers, body).await?.0)
}

/// Prints the measured phase; `warm_202` counts the warm-up's accepted events, which the
/// storage check adds to the answers.
fn print_summary(samples: &[Sample], took: Duration, warm_202: usize) {
    let sent = samples.iter().filter(|s| s.0 != 1);
    let mut latencies: Vec<u64> = sent.map(|s| s.1).collect();
    latencies.sort_unstable();
    let at = |q: f64| {
        let index = ((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1);
        latencies.get(index).copied().unwrap_or(0)
    };
    let count = |f: &dyn Fn(u16) -> bool| samples.iter().filter(|s| f(s.0)).count();
    println!(
        "BENCH requests={} duration_us={} p50_us={} p99_us={} p999_us={} max_us={} \
         s202={} s200={} sother={} err_connect=0 err_read={} err_write=0 err_timeout={} \
         warm202={warm_202}",
        latencies.len(),
        took.as_micros(),
        at(0.5),
        at(0.99),
        at(0.999),
        latencies.last().copied().unwrap_or(0),
        count(&|s| s == 202),
        count(&|s| s == 200),
        count(&|s| s != 200 && s != 202 && s > 1),
        count(&|s| s == 0),
        count(&|s| s == 1),
    );
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
