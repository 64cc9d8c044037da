"""Load generators with one result shape: {rps, p50_ms, p99_ms, mean_ms, errors, tool}.

* ab (ApacheBench, keep-alive) for requests with a fixed body: one C
  process, and its latencies are per request and self-consistent.
* wrk for requests whose body changes every time (registration needs a new
  key per request): only wrk can script that. On a small VM wrk's latency
  figures are sometimes impossible (mean latency x requests/s well above the
  number of connections), so ``in_flight`` lets the report flag them.
* a multiprocess Python client when neither is installed (it spends the
  cores the server needs on a 2-core machine: figures are a floor).
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path
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
-- A registration needs a key no one registered: this thread's prefix (8
-- bytes from /dev/urandom, so no two threads or runs share one) and a
-- counter make one without 64 random draws per request (the loader shares
-- the node's 2 cores: its work per request counts against the node's
-- figures). The share is random once per thread; the node seals each with a
-- fresh nonce all the same.
local prefix, share
setup = function(thread) thread:set("id", math.random(1, 1000000000)) end
init = function(args)
  local urandom = assert(io.open("/dev/urandom", "rb"))
  local bytes = urandom:read(8)
  urandom:close()
  prefix = bytes:gsub(".", function(c) return string.format("%%02x", c:byte()) end)
  math.randomseed(os.time() + id)
  share = hex(128)
end
request = function()
  if register then
    counter = counter + 1
    body = '{"auth_type":"telegram","curve_type":"secp256k1","public_key":"02' .. prefix ..
           string.format("%%048x", counter) .. '","share":"' .. share .. '"}'
  end
  return wrk.format(nil, nil, nil, body)
end
done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read +
                 summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %%d %%f %%f %%f %%d %%f\\n", summary.requests, summary.duration / 1e6,
           latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors, latency.mean / 1000))
end
"""


def register_v1_share(url: str, headers: dict[str, str]) -> dict:
    """Register a fresh secp256k1 key with a random share (v1), for a read
    scenario; returns the body without the share, which reads it back."""
    import requests

    body = {
        "auth_type": "telegram",
        "curve_type": "secp256k1",
        "public_key": "02" + os.urandom(32).hex(),
    }
    r = requests.post(
        url + "/keyshare/v1/register",
        json={**body, "share": os.urandom(64).hex()},
        headers=headers,
        timeout=10,
    )
    if r.status_code != 200:
        raise SystemExit(f"registering the benchmark's share failed: {r.status_code} {r.text}")
    return body


def wrk_load(url: str, scenario: dict, headers: dict, concurrency: int, duration: float) -> dict:
    lua_body = "nil" if scenario["body"] is None else json.dumps(scenario["body"])
    script = WRK_SCRIPT % {
        "body": lua_body,
        "register": "true" if scenario["register"] else "false",
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(f'wrk.method = "{scenario["method"]}"\n')
        handle.write('wrk.headers["Content-Type"] = "application/json"\n')
        for name, value in headers.items():
            handle.write(f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}\n")
        handle.write(script)
        path = handle.name
    try:
        threads = max(1, min(concurrency, 2))
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{concurrency}",
                f"-d{max(1, round(duration))}s",
                "--timeout",
                "10s",
                "-s",
                path,
                url + scenario["path"],
            ],
            capture_output=True,
            text=True,
            timeout=duration + 60,
        ).stdout
    finally:
        os.unlink(path)
    match = re.search(r"RESULT (\d+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+) ([\d.]+)", out)
    if not match:
        raise RuntimeError(f"wrk gave no result: {out[-500:]}")
    count, seconds, p50, p99, errors, mean = match.groups()
    return {
        "rps": int(count) / float(seconds),
        "p50_ms": float(p50),
        "p99_ms": float(p99),
        "mean_ms": float(mean),
        "errors": int(errors),
        "tool": "wrk",
    }


def ab_request(url: str, scenario: dict, headers: dict, folder: str) -> list[str]:
    """ab's arguments for the scenario's request (headers, the body as a file
    in ``folder``, the URL): what follows the load options."""
    args = []
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    if scenario["body"] is not None:
        Path(folder, "body.json").write_text(scenario["body"])
        args += ["-p", f"{folder}/body.json", "-T", "application/json"]
    return args + [url + scenario["path"]]


def ab_load(url: str, scenario: dict, headers: dict, concurrency: int, duration: float) -> dict:
    """ApacheBench with keep-alive; fixed bodies only."""
    if scenario["register"]:
        raise ValueError("ab sends one fixed body; registration needs wrk or the Python client")
    with tempfile.TemporaryDirectory() as folder:
        command = [
            "ab",
            "-k",
            "-q",
            "-c",
            str(concurrency),
            "-t",
            str(max(1, round(duration))),
            "-n",
            "10000000",
            "-s",
            "10",
            "-e",
            f"{folder}/percentiles.csv",
        ]
        out = subprocess.run(
            command + ab_request(url, scenario, headers, folder),
            capture_output=True,
            text=True,
            timeout=duration + 60,
        ).stdout
        percentiles = {}
        for line in Path(folder, "percentiles.csv").read_text().splitlines()[1:]:
            served, ms = line.split(",")
            percentiles[int(float(served))] = float(ms)
    done = re.search(r"Complete requests:\s+(\d+)", out)
    rps = re.search(r"Requests per second:\s+([\d.]+)", out)
    mean = re.search(r"Time per request:\s+([\d.]+) \[ms\] \(mean\)", out)
    if not (done and rps and mean):
        raise RuntimeError(f"ab gave no result: {out[-500:]}")
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    non_2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    return {
        "rps": float(rps.group(1)),
        "p50_ms": percentiles[50],
        "p99_ms": percentiles[99],
        "mean_ms": float(mean.group(1)),
        "errors": failed + (int(non_2xx.group(1)) if non_2xx else 0),
        "tool": "ab",
    }


def in_flight(stats: dict) -> float:
    """Little's law: the mean number of requests in flight the figures imply.
    It cannot exceed the number of connections; when it does, the tool's
    latency figures are wrong."""
    return stats["rps"] * stats["mean_ms"] / 1000


def _worker(args) -> tuple[list[float], int]:
    url, scenario, headers, deadline = args
    parsed = urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    latencies, errors = [], 0
    base = {"Content-Type": "application/json", **headers}
    while time.time() < deadline:
        body = scenario["body"]
        if scenario["register"]:
            body = json.dumps(
                {
                    "auth_type": "telegram",
                    "curve_type": "secp256k1",
                    "public_key": "02" + os.urandom(32).hex(),
                    "share": os.urandom(64).hex(),
                }
            )
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
        return {
            "rps": 0.0,
            "p50_ms": 0.0,
            "p99_ms": 0.0,
            "mean_ms": 0.0,
            "errors": errors,
            "tool": "python",
        }
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "mean_ms": sum(latencies) / len(latencies) * 1000,
        "errors": errors,
        "tool": "python",
    }
