"""The receiver users would otherwise deploy: FastAPI on uvicorn, verifying a GitLab webhook
(constant-time X-Gitlab-Token compare, or the Standard Webhooks HMAC-SHA256 signature) and
parsing its JSON, with no storage at all. run.sh starts it with 2 workers:

    BENCH_SECRET=whsec_... uvicorn fastapi_receiver:app --workers 2 --port 18084
"""

import base64
import hashlib
import hmac
import json
import os
import time

from fastapi import FastAPI, Request, Response

SECRET = os.environ["BENCH_SECRET"]
# The Standard Webhooks reference libraries accept timestamps within five minutes.
TOLERANCE_SECS = 300
KEY = base64.b64decode(SECRET[len("whsec_"):]) if SECRET.startswith("whsec_") else None
TOKEN = None if KEY else SECRET.encode()

app = FastAPI()


def signature_ok(request: Request, body: bytes) -> bool:
    headers = request.headers
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        return False
    try:
        if abs(time.time() - int(timestamp)) > TOLERANCE_SECS:
            return False
    except ValueError:
        return False
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(entry[3:], expected)
        for entry in signatures.split(" ")
        if entry.startswith("v1,")
    )


@app.post("/hooks/gitlab", status_code=202)
async def receive(request: Request):
    body = await request.body()
    if KEY is not None:
        if not signature_ok(request, body):
            return Response(status_code=401)
    else:
        token = request.headers.get("x-gitlab-token", "").encode()
        if not hmac.compare_digest(token, TOKEN):
            return Response(status_code=401)
    try:
        payload = json.loads(body)
        path = payload["project"]["path_with_namespace"]
    except (ValueError, KeyError, TypeError):
        return Response(status_code=400)
    return {"status": "accepted", "project": path}
