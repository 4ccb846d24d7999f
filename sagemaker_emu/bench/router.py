"""`sagemaker-emu bench router`: an inference router in front of three endpoints in two Regions,
under load, while its local endpoint degrades.

Three echo endpoints (`--instances` each, `--latency-ms` per call): `near` in the router's Region
(us-east-1), `far-1` and `far-2` in us-west-2. `--threads` closed-loop callers send `--calls`
calls per phase through the router, and the same load straight to `near` as the baseline for the
first phase. Phases, in order: all healthy; `near` slow (every call on it takes `--slow-ms`
more); `near` throttling every call; `near` deleted. Printed per phase: calls/s, p50 and p99,
failed calls, and each destination's share of the answers with the reasons the router gave.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import subprocess
import sys
import threading
import time

from sagemaker_emu.bench.stats import closed_loop, table
from sagemaker_emu.testing import EmulatorProcess, client, deploy

ROUTER = "bench-router"
ROUTE = f"/inference-routers/{ROUTER}/invocations"


def _setup(emulator: EmulatorProcess, instances: int, latency_ms: int) -> dict[str, str]:
    arns = {}
    for region, name in (("us-east-1", "near"), ("us-west-2", "far-1"), ("us-west-2", "far-2")):
        sm = client(emulator.url, region=region)
        deploy(sm, name, InitialInstanceCount=instances, environment={"ECHO_LATENCY_MS": str(latency_ms)},
               RoutingConfig={"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"})
        arns[name] = sm.describe_endpoint(EndpointName=name)["EndpointArn"]
    sm = client(emulator.url)
    sm.create_inference_router(InferenceRouterName=ROUTER, RoutingTargets=[
        {"Name": "echo", "Destinations": [{"ResourceArn": arn} for arn in arns.values()]}])
    while sm.describe_inference_router(InferenceRouterName=ROUTER)["Status"] != "InService":
        time.sleep(0.05)
    return arns


def _caller(emulator: EmulatorProcess, threads: int, path: str, seen: collections.Counter, lock: threading.Lock):
    connections = [http.client.HTTPConnection(emulator.host, emulator.port, timeout=60) for _ in range(threads)]
    headers = {"Content-Type": "application/json", "X-Amzn-SageMaker-Routing-Target-Name": "echo"}

    def call(user: int) -> None:
        conn = connections[user]
        conn.request("POST", path, body=b'{"x": 1}', headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(resp.status)
        key = (resp.getheader("X-Amzn-SageMaker-Invoked-Routed-Resource-Arn") or "direct",
               resp.getheader("X-Amzn-SageMaker-Invoked-Routing-Reason") or "-")
        with lock:
            seen[key] += 1

    return call


def run(threads: int, calls: int, instances: int, latency_ms: int, slow_ms: int, out=print) -> list[list[str]]:
    emulator = EmulatorProcess(seed=1, log=subprocess.DEVNULL)
    rows = []
    try:
        arns = _setup(emulator, instances, latency_ms)
        names = {arn: name for name, arn in arns.items()}
        faults = {"slow": {"kind": "slow_instance", "endpoint": "near", "latency_ms": slow_ms},
                  "throttling": {"kind": "throttle", "endpoint": "near"}}
        phases = [("direct to near (baseline)", None, "/endpoints/near/invocations"),
                  ("all healthy", None, ROUTE), ("near slow", "slow", ROUTE), ("near throttling", "throttling", ROUTE),
                  ("near deleted", "deleted", ROUTE)]
        for label, change, path in phases:
            emulator.post("/_emu/faults", method="DELETE")
            if change in faults:
                emulator.post("/_emu/faults", json.dumps(faults[change]).encode(), {"Content-Type": "application/json"})
            elif change == "deleted":
                client(emulator.url).delete_endpoint(EndpointName="near")
            seen: collections.Counter = collections.Counter()
            result = closed_loop(_caller(emulator, threads, path, seen, threading.Lock()), threads,
                                 max(1, calls // threads))
            shares = ", ".join(f"{names.get(arn, arn)} {n / max(1, sum(seen.values())):.0%} ({reason})"
                               for (arn, reason), n in sorted(seen.items(), key=lambda kv: -kv[1]))
            rows.append([label, f"{result.rate:.0f}", f"{result.p(50):.1f}", f"{result.p(99):.1f}", str(result.errors),
                         shares])
            out(f"  measured {label}", file=sys.stderr)
    finally:
        emulator.stop()
    out(f"{threads} threads, {calls} calls per phase; 3 echo endpoints of {instances} instance(s), {latency_ms} ms a call; "
        f"'slow' adds {slow_ms} ms to every call on near")
    out(table(["phase", "calls/s", "p50 ms", "p99 ms", "failed", "answered by (reason)"], rows))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagemaker-emu bench router", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--calls", type=int, default=800, help="calls per phase (default: 800)")
    parser.add_argument("--instances", type=int, default=2, help="instances per endpoint (default: 2)")
    parser.add_argument("--latency-ms", type=int, default=5, help="each echo call's time (default: 5)")
    parser.add_argument("--slow-ms", type=int, default=50, help="what a slow near instance adds (default: 50)")
    args = parser.parse_args(argv)
    run(args.threads, args.calls, args.instances, args.latency_ms, args.slow_ms)
    return 0
