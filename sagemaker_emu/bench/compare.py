"""`sagemaker-emu bench compare`: the invoke path of two versions of the code, side by side.

Two servers run at once, one from `--before` (a checkout of an earlier commit, e.g. made with
`git worktree add /tmp/before <rev>`) and one from `--after` (by default this checkout), each
with one echo instance behind `--strategy`. Rounds of `--calls` single-thread raw-HTTP calls
go to each server and to each server's worker directly, one after the other, so the machine's
drift during the run hits both sides alike. Printed: the median over rounds of each target's
p50, the emulator's own overhead (p50 through the server minus p50 straight to its worker)
on each side, and their ratio.

With `--threads N --endpoints M`: the same two servers each get M endpoints, and N threads call
them round-robin (each thread on its own keep-alive connection) for `--calls` calls per thread
per round, each side in turn; printed, each side's calls per second (median of rounds) and
their ratio: what routing decisions serialised across endpoints cost under concurrency.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sagemaker_emu.bench.stats import closed_loop, table
from sagemaker_emu.testing import EmulatorProcess, deploy

BODY = b'{"inputs": "hello"}'
# What boto3 sends (the emulator reads the region and the service from it; it checks no
# signature unless started with --auth sigv4), so that both sides parse it as for a real call.
AUTHORIZATION = ("AWS4-HMAC-SHA256 Credential=testing/20261202/us-east-1/sagemaker/aws4_request, "
                 "SignedHeaders=content-type;host;x-amz-date, Signature=" + "0" * 64)
STRATEGIES = ("RANDOM", "LEAST_OUTSTANDING_REQUESTS", "PREFIX_AWARE", "KV_AWARE")
THIS_TREE = Path(__file__).resolve().parents[2]


def _routing(strategy: str) -> dict:
    routing: dict[str, Any] = {"RoutingStrategy": strategy}
    if strategy == "PREFIX_AWARE":
        routing["PrefixAwareRoutingConfig"] = {"PrefixLength": 1024, "ConcurrencyThreshold": 64}
    return routing


def p50_of(host: str, port: int, path: str, calls: int, headers: dict[str, str] | None = None) -> float:
    """p50 in ms of `calls` back-to-back calls on one keep-alive connection."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    latencies = []
    try:
        for _ in range(calls):
            t0 = time.perf_counter()
            conn.request("POST", path, BODY, {"Content-Type": "application/json", "Authorization": AUTHORIZATION,
                                              "X-Amz-Date": "20261202T000000Z", **(headers or {})})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{host}:{port}{path} answered {resp.status}")
            latencies.append((time.perf_counter() - t0) * 1000)
    finally:
        conn.close()
    return statistics.median(latencies)


def run(before: Path, after: Path, rounds: int, calls: int, strategy: str, out=print) -> dict[str, float]:
    servers = {}
    targets: dict[str, tuple[str, int, str]] = {}
    try:
        for side, tree in (("before", before), ("after", after)):
            emu = servers[side] = EmulatorProcess(seed=1, log=subprocess.DEVNULL, model_roots=(),
                                                  env={"PYTHONPATH": str(tree)})
            deploy(emu.client(), "compare", RoutingConfig=_routing(strategy))
            worker = emu.endpoint_view("compare")["variants"][0]["instances"][0]
            targets[side] = (emu.host, emu.port, "/endpoints/compare/invocations")
            targets[f"{side}: worker directly"] = ("127.0.0.1", worker["port"], "/invocations")
        for target in targets.values():
            p50_of(*target, calls)  # warm-up
        p50s: dict[str, list[float]] = {name: [] for name in targets}
        for n in range(rounds):
            for name, target in targets.items():
                p50s[name].append(p50_of(*target, calls))
            out(f"  round {n + 1} of {rounds}", file=sys.stderr)
    finally:
        for emu in servers.values():
            emu.stop()
    overhead = {side: statistics.median(a - b for a, b in zip(p50s[side], p50s[f"{side}: worker directly"]))
                for side in ("before", "after")}
    rows = [[name, f"{statistics.median(v):.3f}", f"{min(v):.3f}", f"{max(v):.3f}"] for name, v in p50s.items()]
    out(f"{rounds} rounds of {calls} calls per target, 1 thread, {strategy}; before: {before}, after: {after}")
    out(table(["target", "p50 ms (median of rounds)", "min", "max"], rows))
    ratio = overhead["after"] / overhead["before"]
    out(f"emulator overhead at p50: before {overhead['before']:.3f} ms, after {overhead['after']:.3f} ms, "
        f"after / before {ratio:.2f}x")
    return {"before_ms": overhead["before"], "after_ms": overhead["after"], "ratio": ratio}


def _calls_per_s(host: str, port: int, paths: list[str], threads: int, calls: int) -> float:
    """Calls per second of `threads` threads, each making `calls` calls over `paths` in turn
    (stats.closed_loop, one keep-alive connection per thread)."""
    connections = [http.client.HTTPConnection(host, port, timeout=30) for _ in range(threads)]
    turns = [0] * threads

    def call(user: int) -> None:
        conn, turns[user] = connections[user], turns[user] + 1
        conn.request("POST", paths[(user + turns[user]) % len(paths)], BODY, {
            "Content-Type": "application/json", "Authorization": AUTHORIZATION, "X-Amz-Date": "20261202T000000Z"})
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(resp.status)

    try:
        result = closed_loop(call, threads, calls)
    finally:
        for conn in connections:
            conn.close()
    if result.errors:
        raise RuntimeError(f"{result.errors} of {result.calls} calls failed")
    return result.rate


def run_concurrent(before: Path, after: Path, rounds: int, calls: int, strategy: str, threads: int,
                   endpoints: int, out=print) -> dict[str, float]:
    servers = {}
    try:
        for side, tree in (("before", before), ("after", after)):
            emu = servers[side] = EmulatorProcess(seed=1, log=subprocess.DEVNULL, model_roots=(),
                                                  env={"PYTHONPATH": str(tree)})
            for e in range(endpoints):
                deploy(emu.client(), f"compare-{e}", RoutingConfig=_routing(strategy), InitialInstanceCount=2)
        paths = [f"/endpoints/compare-{e}/invocations" for e in range(endpoints)]
        rates: dict[str, list[float]] = {side: [] for side in servers}
        for emu in servers.values():
            _calls_per_s(emu.host, emu.port, paths, threads, max(1, calls // 10))  # warm-up
        for n in range(rounds):
            for side, emu in servers.items():
                rates[side].append(_calls_per_s(emu.host, emu.port, paths, threads, calls))
            out(f"  round {n + 1} of {rounds}", file=sys.stderr)
    finally:
        for emu in servers.values():
            emu.stop()
    medians = {side: statistics.median(v) for side, v in rates.items()}
    out(f"{rounds} rounds of {threads} threads x {calls} calls over {endpoints} endpoints of 2 echo instances, "
        f"{strategy}; before: {before}, after: {after}")
    out(table(["side", "calls/s (median of rounds)", "min", "max"],
              [[side, f"{medians[side]:.0f}", f"{min(v):.0f}", f"{max(v):.0f}"] for side, v in rates.items()]))
    ratio = medians["after"] / medians["before"]
    out(f"calls/s after / before {ratio:.2f}x")
    return {"before": medians["before"], "after": medians["after"], "ratio": ratio}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagemaker-emu bench compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="source tree of the earlier version")
    parser.add_argument("--after", type=Path, default=THIS_TREE, help="source tree of the later version (this one)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=300, help="calls per target per round")
    parser.add_argument("--strategy", choices=STRATEGIES, default="RANDOM")
    parser.add_argument("--threads", type=int, default=1, help="calling threads (more than 1: calls/s, see above)")
    parser.add_argument("--endpoints", type=int, default=8, help="endpoints the threads call (with --threads)")
    args = parser.parse_args(argv)
    for tree in (args.before, args.after):
        if not (tree / "sagemaker_emu" / "__init__.py").exists():
            parser.error(f"{tree} is not a sagemaker-emu source tree")
    if args.threads > 1:
        run_concurrent(args.before, args.after, args.rounds, args.calls, args.strategy, args.threads, args.endpoints)
    else:
        run(args.before, args.after, args.rounds, args.calls, args.strategy)
    return 0
