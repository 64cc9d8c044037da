"""Two load generators with one result shape: {rps, p50_ms, p99_ms, errors}."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import re
import subprocess
import tempfile
import time
from urllib.parse import urlparse

WRK_SCRIPT = """
local counter = 0
local body = %(body)s
local register = %(register)s
local chars = "0123456789abcdef"
local function hex(n)
  local t = {}
  for i = 1, n do local r = math.random(1, 16); t[i] = chars:sub(r, r) end
  return table.concat(t)
end
setup = function(thread) thread:set("id", math.random(1, 1000000000)) end
init = function(args) math.randomseed(os.time() + id) end
request = function()
  if register then
    body = '{"auth_type":"telegram","curve_type":"secp256k1","public_key":"02' .. hex(64) ..
           '","share":"' .. hex(128) .. '"}'
  end
  return wrk.format(nil, nil, nil, body)
end
done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read +
                 summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %%d %%f %%f %%f %%d\\n", summary.requests, summary.duration / 1e6,
           latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors))
end
"""


def wrk_load(url: str, scenario: dict, headers: dict, concurrency: int, duration: float) -> dict:
    lua_body = "nil" if scenario["body"] is None else json.dumps(scenario["body"])
    script = WRK_SCRIPT % {"body": lua_body, "register": "true" if scenario["register"] else "false"}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(f'wrk.method = "{scenario["method"]}"\n')
        handle.write('wrk.headers["Content-Type"] = "application/json"\n')
        for name, value in headers.items():
            handle.write(f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}\n")
        handle.write(script)
        path = handle.name
    try:
        threads = max(1, min(concurrency, 2))
        out = subprocess.run(["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
                              "-s", path, url + scenario["path"]], capture_output=True, text=True,
                             timeout=duration + 60).stdout
    finally:
        os.unlink(path)
    match = re.search(r"RESULT (\d+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+)", out)
    if not match:
        raise RuntimeError(f"wrk gave no result: {out[-500:]}")
    count, seconds, p50, p99, errors = match.groups()
    return {"rps": int(count) / float(seconds), "p50_ms": float(p50), "p99_ms": float(p99), "errors": int(errors)}


def _worker(args) -> tuple[list[float], int]:
    url, scenario, headers, deadline = args
    parsed = urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    latencies, errors = [], 0
    base = {"Content-Type": "application/json", **headers}
    while time.time() < deadline:
        body = scenario["body"]
        if scenario["register"]:
            body = json.dumps({"auth_type": "telegram", "curve_type": "secp256k1",
                               "public_key": "02" + os.urandom(32).hex(), "share": os.urandom(64).hex()})
        started = time.perf_counter()
        conn.request(scenario["method"], scenario["path"], body=body, headers=base)
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            errors += 1
    return latencies, errors


def python_load(url: str, scenario: dict, headers: dict, concurrency: int, duration: float) -> dict:
    deadline = time.time() + duration
    with multiprocessing.Pool(concurrency) as pool:
        started = time.perf_counter()
        parts = pool.map(_worker, [(url, scenario, headers, deadline)] * concurrency)
        elapsed = time.perf_counter() - started
    latencies = sorted(x for lat, _ in parts for x in lat)
    errors = sum(e for _, e in parts)
    if not latencies:
        return {"rps": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "errors": errors}
    return {"rps": len(latencies) / elapsed, "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, "errors": errors}
