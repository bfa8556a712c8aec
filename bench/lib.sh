# Functions run.sh uses: start and stop one server under test at a time, drive load at it
# (wrk closed loop, bench-rate and oha at a fixed rate), measure its CPU time and memory,
# and check what it stored. Sourced by run.sh and serve.sh, which set BIN, BENCH, WORK,
# RAW, CHECKS, NOTES, PORT and the durations.

CLK_TCK=$(getconf CLK_TCK)
# Secrets of the runs: a webhook token and a Standard Webhooks signing key (32 bytes).
TOKEN=bench-hook-token
SIGNING_KEY=whsec_YmVuY2gtc2lnbmluZy1rZXktb2YtMzItYnl0ZXMhISE=
SERVER_PID=
SERVER_NAME=
ANSWERED=0
RSS_IDLE=0
RSS_PEAK=0

# The first N fields of /proc/PID/stat after the command name; utime and stime are the
# 12th and 13th of them (fields 14 and 15 of the whole line).
ticks_of() {
    sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0
}

# CPU time of the server and its direct children (uvicorn's workers), in clock ticks.
cpu_ticks() {
    local total child
    total=$(ticks_of "$SERVER_PID")
    for child in $(pgrep -P "$SERVER_PID" || true); do
        total=$((total + $(ticks_of "$child")))
    done
    echo "$total"
}

status_kib() {
    awk -v key="$2:" '$1 == key {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

wait_tcp() {
    local i
    for i in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "server $SERVER_NAME did not listen on 127.0.0.1:$PORT" >&2
    return 1
}

# start_server NAME COMMAND...: starts it in the background, logging to WORK/NAME.log.
# Also notes which other processes use the CPU meanwhile (a shared machine skews figures).
start_server() {
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        echo "127.0.0.1:$PORT is already taken; stop what listens there" >&2
        exit 1
    fi
    SERVER_NAME=$1
    shift
    echo "== [$SECONDS s] $SERVER_NAME (load average $(cut -d' ' -f1 /proc/loadavg))"
    others_busy
    "$@" >"$WORK/$SERVER_NAME.log" 2>&1 &
    SERVER_PID=$!
    ANSWERED=0
    RSS_PEAK=0
    wait_tcp
    RSS_IDLE=$(status_kib "$SERVER_PID" VmRSS)
}

# others_busy: remembers processes other than ours that used over 20 % of a core.
others_busy() {
    ps -eo pid=,pcpu=,comm= --sort=-pcpu | awk -v me=$$ '$2 > 20 && $1 != me {print $3}' |
        grep -vE '^(ps|wrk|bench-|ci-bridge|python3|uvicorn|oha)' >>"$WORK/others.txt" || true
}

busy_machine_note() {
    if [ -s "$WORK/others.txt" ]; then
        echo "- Other processes used the CPU during this run ($(sort -u "$WORK/others.txt" | tr '\n' ' ')): its figures are less steady than on an idle machine." >>"$NOTES"
    fi
}

# Starters of one fresh instance: NAME token|hmac. They set STORE for finish.
start_durable() {
    STORE=sqlite:$WORK/$1-$RANDOM.db
    start_server "$1" "$BIN/bench-durable" "127.0.0.1:$PORT" "${STORE#sqlite:}" "$(secret_of "$2")"
}

start_ci_sqlite() {
    local db=$WORK/$1-$RANDOM.db
    STORE=sqlite:$db
    ci_config "$WORK/$1.toml" "sqlite://$db" "$2"
    start_ci "$1" "$WORK/$1.toml"
}

start_ci_postgres() {
    local db=bench_ci_$$_$RANDOM
    psql -h 127.0.0.1 -U postgres -qc "create database $db" >/dev/null
    STORE=postgres:$db
    ci_config "$WORK/$1.toml" "postgres://postgres@127.0.0.1:5432/$db" "$2"
    start_ci "$1" "$WORK/$1.toml"
}

# finish: stops the instance, checks what it stored, and drops its database.
finish() {
    stop_server
    case $STORE in
    sqlite:*)
        check_sqlite "$SERVER_NAME" "${STORE#sqlite:}"
        rm -f "${STORE#sqlite:}" "${STORE#sqlite:}-wal" "${STORE#sqlite:}-shm"
        ;;
    postgres:*)
        check_postgres "$SERVER_NAME" "${STORE#postgres:}"
        psql -h 127.0.0.1 -U postgres -qc "drop database ${STORE#postgres:}" >/dev/null
        ;;
    esac
}

secret_of() {
    if [ "$1" = hmac ]; then echo "$SIGNING_KEY"; else echo "$TOKEN"; fi
}

# closed_round SCENARIO STARTER token|hmac REP: one fresh instance, its warm-up, and one
# recorded run at 64 connections.
closed_round() {
    "$2" "$1" "$3"
    load_run "$1" closed 64 warm "$WARMUP" "$3"
    load_run "$1" closed 64 "$4" "$DURATION" "$3"
    finish
}

# rate_round SCENARIO STARTER token|hmac REP: one fresh instance at the fixed rate.
rate_round() {
    "$2" "$1" "$3"
    fixed_rate "$1" "$(secret_of "$3")" "$4"
    finish
}

# measure SCENARIO STARTER token|hmac: REPS fresh instances at 64 connections, each with
# its warm-up, then one fresh instance at the fixed rate.
measure() {
    local rep
    for rep in $(seq 1 "$REPS"); do
        "$2" "$1" "$3"
        load_run "$1" closed 64 warm "$WARMUP" "$3"
        load_run "$1" closed 64 "$rep" "$DURATION" "$3"
        finish
    done
    "$2" "$1" "$3"
    fixed_rate "$1" "$(secret_of "$3")"
    finish
}

# start_ci NAME CONFIG: ci-bridge, ready once /readyz answers 200.
start_ci() {
    start_server "$1" "$BIN/ci-bridge" serve --config "$2"
    local i
    for i in $(seq 1 200); do
        curl -fs -o /dev/null "http://127.0.0.1:$PORT/readyz" && break
        sleep 0.05
    done
    sleep 0.5
    RSS_IDLE=$(status_kib "$SERVER_PID" VmRSS)
}

start_fastapi() {
    start_server fastapi-hmac env BENCH_SECRET="$1" python3 -m uvicorn fastapi_receiver:app \
        --app-dir "$BENCH" --host 127.0.0.1 --port "$PORT" --workers 2 \
        --log-level warning --no-access-log
    sleep 1
}

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    RSS_PEAK=$(status_kib "$SERVER_PID" VmHWM)
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 150); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

# field LINE KEY: the value of KEY=... in a "BENCH ..." line.
field() {
    echo "$1" | tr ' ' '\n' | awk -F= -v key="$2" '$1 == key {print $2}'
}

# record SCENARIO LOAD CONNECTIONS REP LINE TICKS: appends one run to raw.csv.
record() {
    local line=$5 errors=0 key values=""
    for key in err_connect err_read err_write err_timeout; do
        errors=$((errors + $(field "$line" $key)))
    done
    for key in requests duration_us p50_us p99_us p999_us max_us s202 s200 sother; do
        values="$values,$(field "$line" $key)"
    done
    echo "$1,$2,$3,$4$values,$errors,$6,$CLK_TCK" >>"$RAW"
    printf '   %-14s %-6s c=%-4s %6.0f req/s  p99 %s µs  202=%s 200=%s other=%s errors=%s\n' \
        "$1" "$2" "$3" \
        "$(awk -v r="$(field "$line" requests)" -v d="$(field "$line" duration_us)" 'BEGIN {print r / d * 1e6}')" \
        "$(field "$line" p99_us)" "$(field "$line" s202)" "$(field "$line" s200)" \
        "$(field "$line" sother)" "$errors"
}

# load_run SCENARIO LOAD CONNECTIONS REP SECONDS token|hmac: one wrk run; REP "warm" is
# not recorded (its 202 answers still count towards the storage check).
load_run() {
    local token="" key="" before after line
    if [ "$6" = hmac ]; then key=$SIGNING_KEY; else token=$TOKEN; fi
    before=$(cpu_ticks)
    line=$(BENCH_BODY="$BENCH/merge_request.json" BENCH_TOKEN="$token" BENCH_SIGNING_KEY="$key" \
        BENCH_RUN="$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')" \
        wrk -t1 -c"$3" -d"$5"s --timeout 10s -s "$BENCH/gitlab.lua" \
        "http://127.0.0.1:$PORT/hooks/gitlab" | grep '^BENCH ')
    after=$(cpu_ticks)
    ANSWERED=$((ANSWERED + $(field "$line" s202)))
    [ "$4" = warm ] || record "$1" "$2" "$3" "$4" "$line" $((after - before))
}

# closed_loop SCENARIO token|hmac: warm-up, then REPS runs at 64 connections.
closed_loop() {
    local rep
    load_run "$1" closed 64 warm "$WARMUP" "$2"
    for rep in $(seq 1 "$REPS"); do
        load_run "$1" closed 64 "$rep" "$DURATION" "$2"
    done
}

# fixed_rate SCENARIO SECRET [REP]: bench-rate at RATE req/s, 64 connections.
fixed_rate() {
    local line
    line=$("$BIN/bench-rate" "127.0.0.1:$PORT" "$RATE" "$RATE_DURATION" "$WARMUP" "$2" | grep '^BENCH ')
    ANSWERED=$((ANSWERED + $(field "$line" s202) + $(field "$line" warm202)))
    record "$1" rate 64 "${3:-1}" "$line" ""
}

# oha_check: oha's own fixed-rate, latency-corrected run beside bench-rate's, on
# bench-bare (which answers every request alike, so oha's repeated headers do no harm).
oha_check() {
    local json line
    json=$(oha -z "${RATE_DURATION}s" -w -q "$RATE" --latency-correction -c 64 --no-tui \
        --output-format json -m POST -T application/json -D "$BENCH/merge_request.json" \
        -H "X-Gitlab-Event: Merge Request Hook" -H "X-Gitlab-Token: $TOKEN" \
        "http://127.0.0.1:$PORT/hooks/gitlab")
    line=$(echo "$json" | python3 "$BENCH/oha_line.py" "$RATE_DURATION")
    record bare oha 64 1 "$line" ""
}

# ci_config FILE DATABASE_URL token|hmac: ci-bridge with unreachable GitLab and Jenkins
# (its workers retry in the background, as they would during an outage).
ci_config() {
    local secret="webhook_token = \"$TOKEN\""
    [ "$3" = hmac ] && secret="signing_token = \"$SIGNING_KEY\""
    cat >"$1" <<EOF
[server]
listen = "127.0.0.1:$PORT"
shutdown_timeout = "2s"
[database]
url = "$2"
[gitlab]
url = "http://127.0.0.1:1"
token = "bench-gitlab-token"
$secret
[jenkins]
url = "http://127.0.0.1:2"
user = "bench"
api_token = "bench-jenkins-token"
callback_token = "bench-callback"
[[projects]]
gitlab = "acme/webshop"
job = "webshop/merge-requests"
EOF
}

# check_sqlite SCENARIO DB / check_postgres SCENARIO DATABASE: rows and distinct keys.
check_sqlite() {
    local counts
    counts=$(sqlite3 "$2" "select count(*) || ',' || count(distinct dedup_key) from events")
    echo "$1,$ANSWERED,$counts,$RSS_IDLE,$RSS_PEAK" >>"$CHECKS"
}

check_postgres() {
    local counts
    counts=$(psql -h 127.0.0.1 -U postgres -d "$2" -Atc \
        "select count(*) || ',' || count(distinct dedup_key) from events")
    echo "$1,$ANSWERED,$counts,$RSS_IDLE,$RSS_PEAK" >>"$CHECKS"
}

pg_available() {
    command -v psql >/dev/null &&
        timeout 5 psql -h 127.0.0.1 -U postgres -Atc 'select 1' >/dev/null 2>&1
}
