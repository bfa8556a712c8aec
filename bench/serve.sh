#!/usr/bin/env bash
# One server of the comparison, left running for a load generator of your own:
#
#   bash bench/serve.sh SERVER [PORT]
#
# SERVER is bare, durable-token, durable-hmac, ci-token, ci-signature, ci-pg-token or
# fastapi-hmac, started exactly as bench/run.sh starts it (fresh database, same secrets,
# 127.0.0.1 only). It prints what to send. On Ctrl-C it stops the server and prints the CPU
# time it used while it ran and, for the servers that store, the stored rows and distinct
# keys (compare them with the 202 answers your generator counted).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=$ROOT/bench
source "$BENCH/lib.sh"

SERVER=${1:?usage: bash bench/serve.sh SERVER [PORT]}
PORT=${2:-18090}
cargo build --release --quiet -p ci-bridge -p ci-bridge-bench
BIN=$ROOT/target/release
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ci-bridge-bench.XXXXXX")
CHECKS=$WORK/checks.csv
NOTES=$WORK/notes.txt
: >"$NOTES"
STORE=
SECRET=token

case $SERVER in
bare) start_server bare "$BIN/bench-bare" "127.0.0.1:$PORT" ;;
durable-token) start_durable "$SERVER" token ;;
durable-hmac) SECRET=hmac && start_durable "$SERVER" hmac ;;
ci-token) start_ci_sqlite "$SERVER" token ;;
ci-signature) SECRET=hmac && start_ci_sqlite "$SERVER" hmac ;;
ci-pg-token) start_ci_postgres "$SERVER" token ;;
fastapi-hmac) SECRET=hmac && start_fastapi "$SIGNING_KEY" ;;
*) echo "unknown server $SERVER" >&2 && exit 2 ;;
esac

BEFORE=$(cpu_ticks)
done_serving() {
    trap - INT TERM
    local used=$(($(cpu_ticks) - BEFORE))
    echo
    echo "CPU time of $SERVER while it served: $((used * 1000 / CLK_TCK)) ms"
    if [ -n "$STORE" ]; then
        finish
        IFS=, read -r _ _ rows keys _ <"$CHECKS"
        echo "rows stored: $rows, distinct keys: $keys"
    else
        stop_server
    fi
    rm -rf "$WORK"
    exit 0
}
trap done_serving INT TERM

echo
echo "$SERVER listens on http://127.0.0.1:$PORT/hooks/gitlab (pid $SERVER_PID). Send:"
echo "  POST, Content-Type: application/json, X-Gitlab-Event: Merge Request Hook,"
if [ "$SECRET" = hmac ]; then
    echo "  a Standard Webhooks signature (webhook-id, webhook-timestamp, webhook-signature)"
    echo "  made with the key $SIGNING_KEY,"
else
    echo "  X-Gitlab-Token: $TOKEN,"
fi
echo "  and the body $BENCH/merge_request.json."
echo "Deliveries with the same Idempotency-Key, or without one and with the same body, are one"
echo "delivery: the first is stored (202), the others answered 200 duplicate. Ctrl-C to stop."
while kill -0 "$SERVER_PID" 2>/dev/null; do
    sleep 1
done
echo "$SERVER stopped by itself; its log: $WORK/$SERVER.log" >&2
exit 1
