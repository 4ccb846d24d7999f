"""`sagemaker-emu bench router`: an inference router in front of three endpoints in two Regions,
under load, while its local endpoint degrades.

Three echo endpoints (`--instances` each, `--latency-ms` per call): `near` in the router's Region
(us-east-1), `far-1` and `far-2` in us-west-2. `--threads` closed-loop callers send `--calls`
calls per phase. Two baselines first, called directly: `near` alone, and `pool`, one endpoint with
the instances of far-1 and far-2 together under LEAST_OUTSTANDING_REQUESTS (what the router's
healthy destinations can do when one balancer sees all their instances). Then through the
router: all healthy; `near` slow (every call on it takes `--slow-ms` more); `near` throttling
every call; `near` deleted a quarter of the way into the phase. Printed per phase: calls/s, p50
and p99, failed calls (and, for the deletion, those that failed more than a second after it),
and each destination's share of the answers with the reasons the router gave; then the slow
phase's p99 over the pool's.

With `--overhead`: what the router adds, `bench compare`-style. One server, one echo instance;
`--rounds` rounds of `--calls` single-thread calls each to the worker directly, InvokeEndpoint,
and InvokeInferenceRouter with that endpoint as its one destination, one after the other, so the
machine's drift hits all three alike. Printed: the median over rounds of each one's p50, and of
the router's p50 minus InvokeEndpoint's in the same round.
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

import statistics

from sagemaker_emu.bench.compare import p50_of
from sagemaker_emu.bench.stats import closed_loop, table
from sagemaker_emu.testing import EmulatorProcess, client, deploy

ROUTER = "bench-router"
ROUTE = f"/inference-routers/{ROUTER}/invocations"


def _setup(emulator: EmulatorProcess, instances: int, latency_ms: int) -> dict[str, str]:
    arns = {}
    for region, name, count in (("us-east-1", "pool", 2 * instances), ("us-east-1", "near", instances),
                                ("us-west-2", "far-1", instances), ("us-west-2", "far-2", instances)):
        sm = client(emulator.url, region=region)
        deploy(sm, name, InitialInstanceCount=count, environment={"ECHO_LATENCY_MS": str(latency_ms)},
               RoutingConfig={"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"})
        arns[name] = sm.describe_endpoint(EndpointName=name)["EndpointArn"]
    del arns["pool"]
    sm = client(emulator.url)
    sm.create_inference_router(InferenceRouterName=ROUTER, RoutingTargets=[
        {"Name": "echo", "Destinations": [{"ResourceArn": arn} for arn in arns.values()]}])
    while sm.describe_inference_router(InferenceRouterName=ROUTER)["Status"] != "InService":
        time.sleep(0.05)
    return arns


def _caller(emulator: EmulatorProcess, threads: int, path: str, seen: collections.Counter, lock: threading.Lock,
            failed_at: list[float]):
    connections = [http.client.HTTPConnection(emulator.host, emulator.port, timeout=60) for _ in range(threads)]
    headers = {"Content-Type": "application/json", "X-Amzn-SageMaker-Routing-Target-Name": "echo"}

    def call(user: int) -> None:
        conn = connections[user]
        conn.request("POST", path, body=b'{"x": 1}', headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            failed_at.append(time.perf_counter())
            raise RuntimeError(resp.status)
        key = (resp.getheader("X-Amzn-SageMaker-Invoked-Routed-Resource-Arn") or "direct",
               resp.getheader("X-Amzn-SageMaker-Invoked-Routing-Reason") or "-")
        with lock:
            seen[key] += 1

    return call


def run(threads: int, calls: int, instances: int, latency_ms: int, slow_ms: int, out=print) -> list[list[str]]:
    emulator = EmulatorProcess(seed=1, log=subprocess.DEVNULL)
    rows, p99 = [], {}
    try:
        arns = _setup(emulator, instances, latency_ms)
        names = {arn: name for name, arn in arns.items()}
        faults = {"slow": {"kind": "slow_instance", "endpoint": "near", "latency_ms": slow_ms},
                  "throttling": {"kind": "throttle", "endpoint": "near"}}
        phases = [("direct to near (baseline)", None, "/endpoints/near/invocations"),
                  ("direct to pool: LOR over the far instances", None, "/endpoints/pool/invocations"),
                  ("all healthy", None, ROUTE), ("near slow", "slow", ROUTE), ("near throttling", "throttling", ROUTE),
                  ("near deleted mid-load", "deleted", ROUTE)]
        for label, change, path in phases:
            emulator.post("/_emu/faults", method="DELETE")
            if change in faults:
                emulator.post("/_emu/faults", json.dumps(faults[change]).encode(), {"Content-Type": "application/json"})
            seen: collections.Counter = collections.Counter()
            failed_at: list[float] = []
            deleted_at: list[float] = []
            deleted = _delete_near_later(emulator, seen, calls // 4, deleted_at) if change == "deleted" else None
            result = closed_loop(_caller(emulator, threads, path, seen, threading.Lock(), failed_at), threads,
                                 max(1, calls // threads))
            shares = ", ".join(f"{names.get(arn, arn)} {_share(n, sum(seen.values()))} ({reason})"
                               for (arn, reason), n in sorted(seen.items(), key=lambda kv: -kv[1]))
            failed = str(result.errors)
            if deleted is not None:
                deleted.join()
                late = sum(t > deleted_at[0] + 1 for t in failed_at)
                failed += f" ({late} after the first second)"
            p99[change or path] = result.p(99)
            rows.append([label, f"{result.rate:.0f}", f"{result.p(50):.1f}", f"{result.p(99):.1f}", failed, shares])
            out(f"  measured {label}", file=sys.stderr)
    finally:
        emulator.stop()
    out(f"{threads} threads, {calls} calls per phase; 3 echo endpoints of {instances} instance(s), {latency_ms} ms a call "
        f"(pool: {2 * instances} instances); 'slow' adds {slow_ms} ms to every call on near")
    out(table(["phase", "calls/s", "p50 ms", "p99 ms", "failed", "answered by (reason)"], rows))
    out(f"near slow, p99 through the router / p99 of LOR over the far instances: "
        f"{p99['slow'] / p99['/endpoints/pool/invocations']:.2f}")
    return rows


def _share(n: int, total: int) -> str:
    share = n / max(1, total)
    return f"{share:.0%}" if share >= 0.01 else f"{share:.1%}"


def _delete_near_later(emulator: EmulatorProcess, seen: collections.Counter, after: int,
                       at: list[float]) -> threading.Thread:
    """Deletes `near` once `after` calls have been answered, noting when in `at`."""

    def delete() -> None:
        while sum(seen.values()) < after:
            time.sleep(0.001)
        at.append(time.perf_counter())
        client(emulator.url).delete_endpoint(EndpointName="near")

    worker = threading.Thread(target=delete, daemon=True)
    worker.start()
    return worker


def overhead(rounds: int, calls: int, out=print) -> float:
    """The median over rounds of InvokeInferenceRouter's p50 minus InvokeEndpoint's, in ms."""
    emulator = EmulatorProcess(seed=1, log=subprocess.DEVNULL)
    try:
        sm = emulator.client()
        deploy(sm, "solo")
        sm.create_inference_router(InferenceRouterName=ROUTER, RoutingTargets=[
            {"Name": "echo", "Destinations": [{"ResourceArn": sm.describe_endpoint(EndpointName="solo")["EndpointArn"]}]}])
        while sm.describe_inference_router(InferenceRouterName=ROUTER)["Status"] != "InService":
            time.sleep(0.05)
        worker = emulator.endpoint_view("solo")["variants"][0]["instances"][0]
        targets = {"worker directly": ("127.0.0.1", worker["port"], "/invocations", {}),
                   "InvokeEndpoint": (emulator.host, emulator.port, "/endpoints/solo/invocations", {}),
                   "InvokeInferenceRouter": (emulator.host, emulator.port, ROUTE,
                                             {"X-Amzn-SageMaker-Routing-Target-Name": "echo"})}
        for host, port, path, headers in targets.values():
            p50_of(host, port, path, calls, headers)  # warm-up
        p50s: dict[str, list[float]] = {name: [] for name in targets}
        for n in range(rounds):
            for name, (host, port, path, headers) in targets.items():
                p50s[name].append(p50_of(host, port, path, calls, headers))
            out(f"  round {n + 1} of {rounds}", file=sys.stderr)
    finally:
        emulator.stop()
    added = statistics.median(r - e for r, e in zip(p50s["InvokeInferenceRouter"], p50s["InvokeEndpoint"]))
    out(f"{rounds} rounds of {calls} calls per target, 1 thread, one echo instance")
    out(table(["target", "p50 ms (median of rounds)", "min", "max"],
              [[name, f"{statistics.median(v):.3f}", f"{min(v):.3f}", f"{max(v):.3f}"] for name, v in p50s.items()]))
    out(f"InvokeInferenceRouter adds {added:+.3f} ms at p50 over InvokeEndpoint (median over rounds of the same "
        "round's difference)")
    return added


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagemaker-emu bench router", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--calls", type=int, default=8000,
                        help="calls per phase (default: 8000), or per target and round with --overhead")
    parser.add_argument("--overhead", action="store_true", help="measure what the router adds, interleaved")
    parser.add_argument("--rounds", type=int, default=15, help="rounds with --overhead (default: 15)")
    parser.add_argument("--instances", type=int, default=2, help="instances per endpoint (default: 2)")
    parser.add_argument("--latency-ms", type=int, default=5, help="each echo call's time (default: 5)")
    parser.add_argument("--slow-ms", type=int, default=50, help="what a slow near instance adds (default: 50)")
    args = parser.parse_args(argv)
    if args.overhead:
        overhead(args.rounds, args.calls)
        return 0
    run(args.threads, args.calls, args.instances, args.latency_ms, args.slow_ms)
    return 0
