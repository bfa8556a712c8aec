#!/usr/bin/env bash
# Property-based API test of ci-bridge against openapi.yaml, with Schemathesis.
#
# 1. `ci-bridge demo` (the real service against in-process fakes of GitLab and Jenkins)
#    is fuzzed on every operation of openapi.yaml.
# 2. The demo has no admin token and no SonarQube, so its admin and compliance APIs only
#    answer 403 and /hooks/sonarqube 404. A second instance, `ci-bridge serve` with an
#    admin token, a SonarQube secret, an SQLite file, and GitLab and Jenkins URLs on a
#    closed loopback port, is fuzzed on the admin and compliance APIs and the Jenkins and
#    SonarQube hooks, after a push and a merge request have given it ids to look up.
#
# Everything binds and targets 127.0.0.1. The run fails when a response is a 5xx, or has a
# status, content type, header or body that openapi.yaml does not document, or when
# openapi.yaml is not a valid OpenAPI document.
#
# Tunables (environment):
#   ST_MAX_EXAMPLES       test cases per operation and phase              (default 60)
#   ST_TIME_LIMIT         hard limit on each Schemathesis run, in seconds  (default 100)
#   ST_SEED               Hypothesis seed, to replay a run                 (default: random)
#   CI_BRIDGE_BIN         a ci-bridge binary to test instead of building target/release
#   SCHEMATHESIS_VERSION  the version installed when none is found         (default 4.32.5)
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_EXAMPLES="${ST_MAX_EXAMPLES:-60}"
TIME_LIMIT="${ST_TIME_LIMIT:-100}"
SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
REPORT_DIR="target/schemathesis"
VENV="target/schemathesis-venv"
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance
CHECKS="$CHECKS,response_schema_conformance,response_headers_conformance"
# The demo's fixed credentials (src/demo.rs), and the second instance's; they guard
# nothing outside this test.
DEMO_WEBHOOK_TOKEN="demo-webhook-token"
DEMO_CALLBACK_TOKEN="demo-callback-token"
SERVE_WEBHOOK_TOKEN="schemathesis-webhook-token"
SONAR_SECRET="schemathesis-sonar-secret"
# One bearer token for both the admin API and the callbacks: a run sends one Authorization.
ADMIN_TOKEN="schemathesis-bearer-token"
SERVE_CALLBACK_TOKEN="$ADMIN_TOKEN"

step() { printf '\n== %s\n' "$*"; }

# --- tools --------------------------------------------------------------------------------

# Schemathesis 4 is required: its command-line flags differ from version 3's.
schemathesis_ok() { "$1" --version 2>/dev/null | grep -Eq 'version 4\.'; }

install_tools() {
    echo "installing schemathesis $SCHEMATHESIS_VERSION from PyPI into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION" "openapi-spec-validator>=0.7"
}

step "tools"
if command -v schemathesis >/dev/null && schemathesis_ok schemathesis \
    && command -v openapi-spec-validator >/dev/null; then
    ST=schemathesis
    VALIDATOR=openapi-spec-validator
else
    ST="$VENV/bin/schemathesis"
    VALIDATOR="$VENV/bin/openapi-spec-validator"
    if ! { [ -x "$ST" ] && schemathesis_ok "$ST" && [ -x "$VALIDATOR" ]; }; then
        install_tools
    fi
fi
"$ST" --version

step "openapi.yaml is a valid OpenAPI document"
"$VALIDATOR" openapi.yaml

step "ci-bridge binary"
if [ -n "${CI_BRIDGE_BIN:-}" ]; then
    BIN="$CI_BRIDGE_BIN"
else
    # Always asked for: cargo returns at once when target/release is up to date, and a
    # stale binary would test old code against the new spec.
    cargo build --release --locked -p ci-bridge
    BIN="target/release/ci-bridge"
fi
[ -x "$BIN" ] || { echo "no executable at $BIN" >&2; exit 1; }

# --- processes ----------------------------------------------------------------------------

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ci-bridge-schemathesis.XXXXXX")"
PIDS=()
stop() {
    local pid="$1"
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    for pid in "${PIDS[@]}"; do stop "$pid"; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# wait_for_address LOG SED_EXPRESSION: the first address the log prints (10 s at most).
wait_for_address() {
    local found=""
    for _ in $(seq 1 100); do
        found="$(sed -n "$2" "$1" | head -n 1)"
        [ -n "$found" ] && break
        sleep 0.1
    done
    printf '%s' "$found"
}

# wait_ready URL: until GET URL/readyz answers 200 (10 s at most).
wait_ready() {
    python3 - "$1/readyz" <<'EOF'
import sys, time, urllib.request

deadline = time.monotonic() + 10
while True:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=2) as response:
            if response.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit(f"{sys.argv[1]} did not answer 200 within 10 s")
    time.sleep(0.1)
EOF
}

# Schemathesis hooks. The fuzzer cannot guess a configured project, an existing id or a
# signature, so two generated cases in three get them: GitLab deliveries name the project
# (and the X-Gitlab-Event of their object_kind), callbacks and lookups use the seeded ids,
# and SonarQube deliveries name the mapped project and carry a valid signature.
cat >"$WORK/hooks.py" <<'EOF'
import hashlib
import hmac
import json
import os
import zlib

import schemathesis

PROJECT = os.environ.get("ST_PROJECT", "demo/app")
EVENT_ID = os.environ.get("ST_EVENT_ID")
BUILD_ID = os.environ.get("ST_BUILD_ID")
MR = os.environ.get("ST_MERGE_REQUEST")  # "project_id iid"
SONAR_SECRET = os.environ.get("ST_SONAR_SECRET")
SONAR_PROJECT = "demo-app"
HEADERS = {
    "push": "Push Hook",
    "tag_push": "Tag Push Hook",
    "merge_request": "Merge Request Hook",
    "note": "Note Hook",
    "pipeline": "Pipeline Hook",
    "build": "Job Hook",
}


def _two_in_three(value, salt):
    text = salt + json.dumps(value, sort_keys=True, default=str)
    return zlib.crc32(text.encode()) % 3 != 0


@schemathesis.hook
def map_case(context, case):
    path = context.operation.path if context.operation else ""
    body = case.body
    if path == "/hooks/gitlab" and isinstance(body, dict):
        if isinstance(body.get("project"), dict) and _two_in_three(body, "project"):
            case.body = {**body, "project": {**body["project"], "path_with_namespace": PROJECT}}
        elif isinstance(body.get("repository"), dict) and _two_in_three(body, "repository"):
            homepage = f"https://gitlab.example.com/{PROJECT}"
            case.body = {**body, "repository": {**body["repository"], "homepage": homepage}}
        kind = body.get("object_kind")
        header = HEADERS.get(kind) if isinstance(kind, str) else None
        if header and case.headers is not None and _two_in_three(body, "header"):
            case.headers = {**case.headers, "X-Gitlab-Event": header}
    elif path == "/hooks/jenkins" and BUILD_ID and isinstance(body, dict):
        if "build_id" in body and _two_in_three(body, "build"):
            case.body = {**body, "build_id": BUILD_ID}
    elif path == "/hooks/jenkins/sast" and BUILD_ID and case.query:
        if "build_id" in case.query and _two_in_three(case.query, "sast"):
            case.query = {**case.query, "build_id": BUILD_ID}
    elif path == "/hooks/sonarqube" and SONAR_SECRET and isinstance(body, dict):
        # Signed as the requests transport serializes the body (json.dumps, UTF-8).
        if isinstance(body.get("project"), dict) and _two_in_three(body, "sonar"):
            body = {**body, "project": {**body["project"], "key": SONAR_PROJECT}}
            case.body = body
        if _two_in_three(body, "signature"):
            raw = json.dumps(body, allow_nan=False).encode()
            signature = hmac.new(SONAR_SECRET.encode(), raw, hashlib.sha256).hexdigest()
            case.headers = {**(case.headers or {}), "X-Sonar-Webhook-HMAC-SHA256": signature}
    elif path.startswith("/api/v1/events/{id}") and EVENT_ID and case.path_parameters:
        if _two_in_three(case.path_parameters, "event"):
            case.path_parameters = {**case.path_parameters, "id": EVENT_ID}
    elif path.startswith("/api/v1/compliance/merge-requests/") and MR and case.path_parameters:
        if _two_in_three(case.path_parameters, "mr"):
            project_id, iid = (int(n) for n in MR.split())
            case.path_parameters = {"project_id": project_id, "iid": iid}
    return case
EOF

SEED_ARGS=()
[ -n "${ST_SEED:-}" ] && SEED_ARGS=(--seed "$ST_SEED")
mkdir -p "$REPORT_DIR"
# Schemathesis keeps replayable failures in a cache, by default ./.schemathesis; keep it
# under target/ with the reports.
cat >"$WORK/schemathesis.toml" <<EOF
[cache]
directory = "$PWD/$REPORT_DIR/cache"
EOF

# run_schemathesis NAME URL [ARGS...]: one bounded run; its status is returned.
# One worker, one request at a time: with two, Hypothesis's shared lambda-source cache
# raised a KeyError inside Schemathesis's coverage phase now and then (a race in the tools),
# and this run checks the contract, not concurrency.
run_schemathesis() {
    local name="$1" url="$2"
    shift 2
    local status=0
    SCHEMATHESIS_HOOKS="$WORK/hooks.py" timeout --signal=INT --kill-after=10 "$TIME_LIMIT" \
        "$ST" --config-file "$WORK/schemathesis.toml" run openapi.yaml \
        --url "$url" \
        --checks "$CHECKS" \
        --max-examples "$MAX_EXAMPLES" \
        --request-timeout 10 \
        --workers 1 \
        --generation-database none \
        --no-color \
        --report junit,har \
        --report-junit-path "$REPORT_DIR/$name.junit.xml" \
        --report-har-path "$REPORT_DIR/$name.har" \
        "${SEED_ARGS[@]}" \
        "$@" \
        || status=$?
    [ "$status" -eq 124 ] && echo "schemathesis did not finish within ${TIME_LIMIT}s" >&2
    return "$status"
}

failed=0

# --- 1. the demo, every operation ---------------------------------------------------------

step "ci-bridge demo on 127.0.0.1"
# Port 0: the kernel picks a free port, and the demo prints the address it got.
"$BIN" demo --listen 127.0.0.1:0 --database "sqlite://$WORK/demo.db" \
    >"$WORK/demo.log" 2>&1 &
DEMO_PID=$!
PIDS+=("$DEMO_PID")
DEMO_URL="$(wait_for_address "$WORK/demo.log" \
    's/^ci-bridge demo: service at \(http:\/\/127\.0\.0\.1:[0-9][0-9]*\)$/\1/p')"
if [ -z "$DEMO_URL" ]; then
    echo "the demo did not start:" >&2
    cat "$WORK/demo.log" >&2
    exit 1
fi
wait_ready "$DEMO_URL"
echo "ready at $DEMO_URL"

step "schemathesis: every operation, against the demo"
ST_PROJECT="demo/app" run_schemathesis demo "$DEMO_URL" \
    --header "X-Gitlab-Token: $DEMO_WEBHOOK_TOKEN" \
    --header "Authorization: Bearer $DEMO_CALLBACK_TOKEN" \
    || failed=1
if ! kill -0 "$DEMO_PID" 2>/dev/null; then
    echo "ci-bridge demo exited during the run" >&2
    failed=1
fi
[ "$failed" -eq 0 ] || { echo "--- ci-bridge demo log" >&2; tail -n 40 "$WORK/demo.log" >&2; }
stop "$DEMO_PID"

# --- 2. serve with an admin token and SonarQube: admin, compliance, Jenkins, SonarQube ----

step "ci-bridge serve with an admin token on 127.0.0.1"
# GitLab and Jenkins on 127.0.0.1:9, where nothing listens: jobs fail and retry, which is
# all this run needs of them.
cat >"$WORK/serve.toml" <<EOF
[server]
listen = "127.0.0.1:0"
admin_token = "$ADMIN_TOKEN"
[database]
url = "sqlite://$WORK/serve.db"
[gitlab]
url = "http://127.0.0.1:9"
token = "unused-gitlab-api-token"
webhook_token = "$SERVE_WEBHOOK_TOKEN"
[jenkins]
url = "http://127.0.0.1:9"
user = "ci-bridge"
api_token = "unused-jenkins-api-token"
callback_token = "$SERVE_CALLBACK_TOKEN"
[sonarqube]
webhook_secret = "$SONAR_SECRET"
[log]
format = "json"
level = "info"
[[projects]]
gitlab = "demo/app"
job = "demo/app-ci"
[projects.quality]
sonarqube_project = ["demo-app"]
EOF
RUST_LOG=info "$BIN" serve --config "$WORK/serve.toml" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
PIDS+=("$SERVE_PID")
SERVE_ADDR="$(wait_for_address "$WORK/serve.log" \
    's/.*"address":"\(127\.0\.0\.1:[0-9][0-9]*\)".*/\1/p')"
if [ -z "$SERVE_ADDR" ]; then
    echo "ci-bridge serve did not start:" >&2
    cat "$WORK/serve.log" >&2
    exit 1
fi
SERVE_URL="http://$SERVE_ADDR"
wait_ready "$SERVE_URL"
echo "ready at $SERVE_URL"

# A push and a merge request; then the push's event and build, once planned, and the
# merge request, once recorded (10 s at most).
IDS="$(python3 - "$SERVE_URL" "$SERVE_WEBHOOK_TOKEN" "$ADMIN_TOKEN" <<'EOF'
import json, sys, time, urllib.error, urllib.request

url, webhook_token, admin_token = sys.argv[1:]
admin = {"Authorization": f"Bearer {admin_token}"}


def call(method, path, headers, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, None


def deliver(event, key, body):
    headers = {"Content-Type": "application/json", "X-Gitlab-Event": event,
               "X-Gitlab-Token": webhook_token, "Idempotency-Key": key}
    status, answer = call("POST", "/hooks/gitlab", headers, body)
    if status != 202:
        sys.exit(f"seeding {event}: {status}")
    return answer["event_id"]


sha = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
project = {"id": 1, "path_with_namespace": "demo/app"}
event_id = deliver("Push Hook", "schemathesis-seed-push", {
    "object_kind": "push", "ref": "refs/heads/main", "before": "0" * 40, "after": sha,
    "project": project, "commits": [{"id": sha, "message": "seed"}]})
deliver("Merge Request Hook", "schemathesis-seed-mr", {
    "object_kind": "merge_request", "project": project, "user": {"id": 7, "username": "dev"},
    "object_attributes": {
        "iid": 3, "action": "open", "state": "opened", "source_branch": "feature",
        "target_branch": "main", "source_project_id": 1, "target_project_id": 1,
        "author_id": 7, "last_commit": {"id": "1" * 40}}})

deadline = time.monotonic() + 10
build_id = None
while time.monotonic() < deadline:
    if build_id is None:
        _, detail = call("GET", f"/api/v1/events/{event_id}", admin)
        builds = (detail or {}).get("builds") or []
        build_id = builds[0]["id"] if builds else None
    if build_id is not None:
        status, _ = call("POST", "/api/v1/compliance/merge-requests/1/3/refresh", admin)
        if status == 202:
            print(event_id, build_id, 1, 3)
            break
    time.sleep(0.1)
else:
    sys.exit("the seeded push and merge request were not processed within 10 s")
EOF
)" || { echo "--- ci-bridge serve log" >&2; tail -n 40 "$WORK/serve.log" >&2; exit 1; }
read -r EVENT_ID BUILD_ID MR_PROJECT MR_IID <<<"$IDS"
echo "seeded event $EVENT_ID, build $BUILD_ID, merge request $MR_PROJECT!$MR_IID"

step "schemathesis: admin and compliance APIs, Jenkins and SonarQube hooks, against serve"
serve_failed=0
ST_EVENT_ID="$EVENT_ID" ST_BUILD_ID="$BUILD_ID" ST_MERGE_REQUEST="$MR_PROJECT $MR_IID" \
ST_SONAR_SECRET="$SONAR_SECRET" run_schemathesis serve "$SERVE_URL" \
    --include-tag admin --include-tag compliance \
    --include-operation-id receiveJenkinsCallback \
    --include-operation-id receiveSastReport \
    --include-operation-id receiveSonarQubeWebhook \
    --header "Authorization: Bearer $ADMIN_TOKEN" \
    || serve_failed=1
if ! kill -0 "$SERVE_PID" 2>/dev/null; then
    echo "ci-bridge serve exited during the run" >&2
    serve_failed=1
fi
[ "$serve_failed" -eq 0 ] || {
    echo "--- ci-bridge serve log" >&2
    tail -n 40 "$WORK/serve.log" >&2
    failed=1
}
stop "$SERVE_PID"

exit "$failed"
