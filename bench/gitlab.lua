-- wrk script: POSTs bench/merge_request.json with the headers GitLab sends, a fresh
-- Idempotency-Key on every request, and, when BENCH_SIGNING_KEY is set, a Standard
-- Webhooks signature computed per request with OpenSSL's HMAC through LuaJIT's FFI.
-- Prints one line "BENCH key=value ..." at the end for run.sh to parse.
--
-- Environment: BENCH_BODY (payload file), BENCH_RUN (8 hex digits, unique per run),
-- BENCH_TOKEN (X-Gitlab-Token, optional), BENCH_SIGNING_KEY (whsec_..., optional).

local ffi = require("ffi")

local file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
local body = file:read("*a")
file:close()
local token = os.getenv("BENCH_TOKEN")
local signing = os.getenv("BENCH_SIGNING_KEY")
local run = os.getenv("BENCH_RUN") or "00000000"

local crypto, hmac
if signing and signing ~= "" then
  -- OpenSSL's HMAC_CTX keeps the keyed state, so a request costs one pass over its bytes.
  ffi.cdef [[
    const void *EVP_sha256(void);
    void *HMAC_CTX_new(void);
    int HMAC_Init_ex(void *ctx, const void *key, int len, const void *md, void *engine);
    int HMAC_Update(void *ctx, const unsigned char *data, size_t len);
    int HMAC_Final(void *ctx, unsigned char *md, unsigned int *len);
    int EVP_EncodeBlock(unsigned char *t, const unsigned char *f, int n);
    int EVP_DecodeBlock(unsigned char *t, const unsigned char *f, int n);
  ]]
  local ok, lib = pcall(ffi.load, "libcrypto.so.3")
  crypto = ok and lib or ffi.load("crypto")
  local encoded = assert(signing:match("^whsec_(.+)$"), "BENCH_SIGNING_KEY is not whsec_")
  local out = ffi.new("unsigned char[?]", #encoded)
  local n = crypto.EVP_DecodeBlock(out, encoded, #encoded)
  local _, padding = encoded:gsub("=", "")
  hmac = crypto.HMAC_CTX_new()
  assert(crypto.HMAC_Init_ex(hmac, out, n - padding, crypto.EVP_sha256(), nil) == 1)
end

local md = ffi.new("unsigned char[32]")
local md_len = ffi.new("unsigned int[1]")
local b64 = ffi.new("unsigned char[64]")

-- "v1,<base64 of HMAC-SHA256(key, id.timestamp.body)>"
local function signature(id, timestamp)
  local prefix = id .. "." .. timestamp .. "."
  crypto.HMAC_Init_ex(hmac, nil, 0, nil, nil)
  crypto.HMAC_Update(hmac, prefix, #prefix)
  crypto.HMAC_Update(hmac, body, #body)
  crypto.HMAC_Final(hmac, md, md_len)
  local n = crypto.EVP_EncodeBlock(b64, md, 32)
  return "v1," .. ffi.string(b64, n)
end

local thread_index = 0
local threads = {}

function setup(thread)
  thread:set("thread_index", thread_index)
  thread_index = thread_index + 1
  table.insert(threads, thread)
end

local counter = 0
n202, n200, nother = 0, 0, 0

-- The parts of a request that never change, built once; only the ids and the signature
-- are formatted per request (wrk.format on a 5 KB body per request costs the load
-- generator a third of its throughput).
local head = "POST /hooks/gitlab HTTP/1.1\r\n" ..
  "Host: " .. (wrk.host or "127.0.0.1") .. ":" .. tostring(wrk.port or 80) .. "\r\n" ..
  "Content-Type: application/json\r\n" ..
  "X-Gitlab-Event: Merge Request Hook\r\n" ..
  "User-Agent: GitLab/17.6.1\r\n" ..
  "X-Gitlab-Instance: https://gitlab.example.com\r\n" ..
  ((token and token ~= "") and ("X-Gitlab-Token: " .. token .. "\r\n") or "")
local tail = "Content-Length: " .. #body .. "\r\n\r\n" .. body

function request()
  counter = counter + 1
  -- A UUID unique per run, thread and request: GitLab sends one Idempotency-Key per event.
  local id = string.format("%s-%04x-4000-8000-%012x", run, thread_index or 0, counter)
  local ids = "X-Gitlab-Webhook-UUID: " .. id .. "\r\nX-Gitlab-Event-UUID: " .. id ..
    "\r\nIdempotency-Key: " .. id .. "\r\n"
  if hmac then
    local timestamp = tostring(os.time())
    ids = ids .. "webhook-id: " .. id .. "\r\nwebhook-timestamp: " .. timestamp ..
      "\r\nwebhook-signature: " .. signature(id, timestamp) .. "\r\n"
  end
  return head .. ids .. tail
end

function response(status, headers, body)
  if status == 202 then
    n202 = n202 + 1
  elseif status == 200 then
    n200 = n200 + 1
  else
    nother = nother + 1
  end
end

function done(summary, latency, requests)
  local s202, s200, sother = 0, 0, 0
  for _, thread in ipairs(threads) do
    s202 = s202 + thread:get("n202")
    s200 = s200 + thread:get("n200")
    sother = sother + thread:get("nother")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d p999_us=%d max_us=%d " ..
    "s202=%d s200=%d sother=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), latency.max, s202, s200, sother,
    e.connect, e.read, e.write, e.timeout))
end
