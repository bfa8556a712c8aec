"""Turns oha's JSON summary (stdin) into the one "BENCH key=value ..." line that wrk's
script and bench-rate print, so run.sh records all three alike. Argument: the duration."""

import json
import sys

result = json.load(sys.stdin)
seconds = float(sys.argv[1])
codes = {int(k): v for k, v in result.get("statusCodeDistribution", {}).items()}
errors = sum(result.get("errorDistribution", {}).values())
latency = result["latencyPercentiles"]
us = lambda key: int((latency.get(key) or 0) * 1e6)
total = sum(codes.values())
print(
    f"BENCH requests={total} duration_us={int(seconds * 1e6)} p50_us={us('p50')} "
    f"p99_us={us('p99')} p999_us={us('p99.9')} max_us={int(result['summary']['slowest'] * 1e6)} "
    f"s202={codes.get(202, 0)} s200={codes.get(200, 0)} "
    f"sother={total - codes.get(202, 0) - codes.get(200, 0)} "
    f"err_connect=0 err_read={errors} err_write=0 err_timeout=0"
)
