#!/usr/bin/env bash
# ci-bridge's benchmark, one command: `bash bench/run.sh` (about 15 minutes) or
# `bash bench/run.sh --quick` (about 4). Installs its tools, builds release binaries, runs
# every server of the comparison on this machine one after the other, and writes
# bench/results/<time>/results.md and results.csv. See bench/README.md.
#
# Everything binds and targets 127.0.0.1; every load run has a fixed duration.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=$ROOT/bench
source "$BENCH/install.sh"
source "$BENCH/lib.sh"

QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
if [ $QUICK = 1 ]; then
    MODE=quick REPS=1 ROUNDS=1 RATE_ROUNDS=1 DURATION=5 WARMUP=2 SWEEP_DURATION=5
    RATE_DURATION=5 BACKLOG=2000 PROBES=20 DRAIN_SECS=60
else
    MODE=full REPS=3 ROUNDS=5 RATE_ROUNDS=3 DURATION=10 WARMUP=2 SWEEP_DURATION=10
    RATE_DURATION=10 BACKLOG=10000 PROBES=50 DRAIN_SECS=360
fi
# Requests per second of the fixed-rate runs (the issue's 2,000).
RATE=2000
# Loopback ports of the servers under test.
PORT=18090

install_tools
echo "== building release binaries"
cargo build --release --quiet -p ci-bridge -p ci-bridge-bench
SECONDS=0
BIN=$ROOT/target/release

OUT=$BENCH/results/$(date -u +%Y%m%dT%H%M%SZ)-$MODE
WORK=$OUT/work
mkdir -p "$WORK"
RAW=$OUT/raw.csv
CHECKS=$OUT/checks.csv
NOTES=$OUT/notes.txt
echo "scenario,load,connections,rep,requests,duration_us,p50_us,p99_us,p999_us,max_us,s202,s200,sother,errors,cpu_ticks,clk_tck" >"$RAW"
echo "scenario,answered_202,rows,distinct_keys,rss_idle_kib,rss_peak_kib" >"$CHECKS"
: >"$NOTES"
if [ "$(stat -f -c %T "$WORK")" = tmpfs ]; then
    echo "- $WORK is on tmpfs: fsync costs nothing there, so durable figures are too good." >>"$NOTES"
fi
{
    echo "mode=$MODE"
    echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
    echo "nproc=$(nproc)"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
    echo "kernel=$(uname -r)"
    echo "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo +changes)"
    echo "reps=$REPS"
    echo "rounds=$ROUNDS"
    echo "rate_rounds=$RATE_ROUNDS"
    echo "duration_s=$DURATION"
    echo "warmup_s=$WARMUP"
    echo "load_before=$(cut -d' ' -f1 /proc/loadavg)"
} >"$OUT/machine.txt"
trap stop_server EXIT

# --- 1. bare hyper: the machine's HTTP limit ---------------------------------------------
start_server bare "$BIN/bench-bare" "127.0.0.1:$PORT"
closed_loop bare token
fixed_rate bare "$TOKEN"
oha_check
stop_server

# --- 2. the minimal durable baseline and ci-bridge on SQLite, in alternating rounds -------
# Servers that store get a fresh instance and database for every run, so each run starts
# from the same empty state; warm-ups count towards the storage check. Each round runs the
# four servers one after the other, so a slow minute of the machine (a neighbour, the
# disk's fsync) falls on a baseline and on ci-bridge alike instead of on one of them.
for round in $(seq 1 "$ROUNDS"); do
    closed_round durable-token start_durable token "$round"
    closed_round ci-token start_ci_sqlite token "$round"
    closed_round durable-hmac start_durable hmac "$round"
    closed_round ci-signature start_ci_sqlite hmac "$round"
done
for round in $(seq 1 "$RATE_ROUNDS"); do
    rate_round durable-token start_durable token "$round"
    rate_round ci-token start_ci_sqlite token "$round"
    rate_round durable-hmac start_durable hmac "$round"
    rate_round ci-signature start_ci_sqlite hmac "$round"
done

# --- 3. ci-bridge: the concurrency sweep, and on PostgreSQL -------------------------------
for connections in 1 16 256; do
    start_ci_sqlite ci-token token
    load_run ci-token sweep "$connections" warm "$WARMUP" token
    load_run ci-token sweep "$connections" 1 "$SWEEP_DURATION" token
    finish
done
if pg_available; then
    measure ci-pg-token start_ci_postgres token
else
    echo "- ci-bridge on PostgreSQL skipped: no server answered at 127.0.0.1:5432." >>"$NOTES"
fi

# --- 4. what users would otherwise deploy: FastAPI + uvicorn, 2 workers ------------------
start_fastapi "$SIGNING_KEY"
closed_loop fastapi-hmac hmac
stop_server

# --- 5. webhook -> Jenkins trigger latency, backlog, memory, start-up --------------------
echo "== [$SECONDS s] trigger latency: $PROBES idle probes, then a burst of $BACKLOG events"
if ! "$BIN/bench-trigger-latency" "$BIN/ci-bridge" "$WORK/trigger" "$BACKLOG" "$PROBES" \
    "$DRAIN_SECS" >"$OUT/trigger.txt" 2>"$WORK/trigger.err"; then
    echo "- bench-trigger-latency failed: $(tail -1 "$WORK/trigger.err")" >>"$NOTES"
fi
if grep -q '^drain_complete=false' "$OUT/trigger.txt"; then
    echo "- The burst of $BACKLOG events was not drained within $DRAIN_SECS s; drain_s is that bound." >>"$NOTES"
fi
[ $QUICK = 1 ] && echo "- Quick run: 1 × ${DURATION} s per point and a burst of $BACKLOG events (the full run: 5 alternating rounds of 10 s for the baselines and ci-bridge on SQLite, 3 × 10 s for the others, and 10,000 events)." >>"$NOTES"

busy_machine_note
echo
"$BIN/bench-report" "$OUT"
rm -rf "$WORK"/*.db "$WORK"/*.db-wal "$WORK"/*.db-shm "$WORK/trigger"/*.db*
echo
echo "Written: $OUT/results.md and $OUT/results.csv (benchmark took $SECONDS s)"
