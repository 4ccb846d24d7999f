"""`sagemaker-emu bench routing`: SageMaker's least-outstanding-requests experiment, on real
processes.

For every (instance profile, users, instances, strategy) point it deploys an llm-sim endpoint
through the emulator's control plane, drives it with closed-loop users (each sends, waits for
the whole answer, optionally thinks, sends again) over the raw wire (`POST
/endpoints/<name>/invocations`, one keep-alive connection per user: boto3's own CPU cost at 80
threads would crowd a 2-core machine), and reports latency percentiles, throughput and the
ratios against RANDOM. `IDEAL` is a reference line, not a SageMaker strategy: a central queue
in the benchmark itself, sending each request straight to a worker as soon as one has room
(one request for `serial`, sixteen for `batch16`; the least busy, ties at random), so every
strategy's p99 is also shown against the best a router that cannot see the future could do.
`IDEAL_FAST` is the same queue choosing the fastest instance among the least busy: on a mixed
fleet, the best a router that also knows each instance's speed could do.

`--inference-components N` runs every point on an inference-component endpoint instead: N
components of the same llm-sim model, each with as many copies as the point has instances
(one vCPU and 1 GiB each, on ml.m5.24xlarge instances), the users spread evenly over the
components, and the strategy choosing among the copies of the component a user calls.

`--fleet mixed` runs every point on a heterogeneous variant as well as (or, alone, instead of)
the uniform one: InstancePools of ml.g5.2xlarge (priority 1, capacity for half the instances)
and ml.g6e.2xlarge (priority 2, the rest), so half the instances are A10Gs and half L40Ss,
each running llm-sim at its accelerator's speed (fleet/speed.py).

`--time-scale` multiplies every simulated latency. The emulator's own overhead (about 1 ms a
call, docs/performance.md) is not scaled, so at 0.05 it weighs twenty times more against the
model's time than it would at full scale; the report states the scale.

Each serial point on instances also shows `bench queueing`'s p99 for the same point and seed:
the same requests through the same strategy, in queueing arithmetic with no emulator and no
machine. Measured over model near 1 says a gap is the strategy's, not the emulator's.
"""

from __future__ import annotations

import argparse
from typing import Any
import http.client
import json
import os
import random
import sys
import subprocess
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass

from sagemaker_emu.bench import queueing
from sagemaker_emu.bench.queueing import CENTRAL, FLEETS, MIXED, UNIFORM
from sagemaker_emu.bench.stats import listed, parse_points, percentile, table
from sagemaker_emu.bench.workloads import WORKLOADS, Workload, user_rng
from sagemaker_emu.fleet.speed import speeds
from sagemaker_emu.testing import EmulatorProcess, RayCluster, deploy

STRATEGIES = ("RANDOM", "LEAST_OUTSTANDING_REQUESTS", "PREFIX_AWARE", "KV_AWARE", "IDEAL", "IDEAL_FAST")
SHORT = {**queueing.SHORT, "PREFIX_AWARE": "PREFIX", "KV_AWARE": "KV"}
CAPACITY = {"serial": 1, "batch16": 16}  # requests an instance runs at once, for the central queue
DEFAULT_POINTS = "4x1,20x5,40x10,60x15,80x20"  # (users x instances), as in SageMaker's post
ROLE = "arn:aws:iam::123456789012:role/bench"
IC_HEADER = "X-Amzn-SageMaker-Inference-Component"
BACKENDS = ("local", "ray")


@dataclass
class PointResult:
    workload: str
    profile: str
    users: int
    instances: int
    strategy: str
    requests: int
    errors: int
    p50_s: float
    p90_s: float
    p99_s: float
    ttft_p50_s: float | None
    ttft_p99_s: float | None
    per_minute: float
    cached_share: float | None = None  # of prompt tokens, as llm-sim's `details` reported them
    fleet: str = "uniform"
    backend: str = "local"  # where the instances ran: local processes, or Ray actors (--fleet ray)
    model_p99_s: float | None = None  # bench queueing's p99 for the same point and seed, where it models one


# ------------------------------------------------------------------ the server and endpoints


class Emulator:
    def __init__(self, seed: int, env: dict[str, str] | None = None, backend: str = "local",
                 ray_python: str | None = None) -> None:
        """`backend` ray: a Ray cluster on this machine, started with `ray_python` (which has Ray),
        and the emulator on that Python with `--fleet ray`."""
        self.backend = backend
        self.cluster = RayCluster(ray_python or sys.executable) if backend == "ray" else None
        try:
            self.emulator = (self.cluster.emulator(seed=seed, log=subprocess.DEVNULL, env=env)
                             if self.cluster else EmulatorProcess(seed=seed, log=subprocess.DEVNULL, env=env))
        except BaseException:
            if self.cluster:
                self.cluster.stop()
            raise
        self.url, self.host, self.port = self.emulator.url, self.emulator.host, self.emulator.port
        self.sm = self.emulator.client()

    def deploy(self, name: str, instances: int, strategy: str, environment: dict[str, str],
               components: int = 0, fleet: str = "uniform") -> dict[str | None, list[dict]]:
        """The endpoint for one point; returns the workers each target routes among: the
        instances under None, or each inference component's copies under its name."""
        routing: dict[str, Any] = {"RoutingStrategy": "RANDOM" if strategy in CENTRAL else strategy}
        if strategy == "PREFIX_AWARE":
            routing["PrefixAwareRoutingConfig"] = {"PrefixLength": 4096, "ConcurrencyThreshold": 4}
        if not components:
            kind: dict[str, Any] = {"InstanceType": UNIFORM}
            if fleet == "mixed":  # the first pool has room for its share; the rest fall back
                self.emulator.capacity(MIXED[0][0], queueing.fleet_types(fleet, instances).count(MIXED[0][0]))
                kind = {"InstancePools": [{"InstanceType": t, "Priority": n} for n, (t, _) in enumerate(MIXED, 1)]}
            try:
                deploy(self.sm, name, container={"Image": "sagemaker-emu/llm-sim"}, environment=environment,
                       InitialInstanceCount=instances, RoutingConfig=routing, **kind)
            finally:
                self.emulator.capacity(MIXED[0][0], None)
            return {None: self.emulator.endpoint_view(name)["variants"][0]["instances"]}
        self.sm.create_model(ModelName=f"{name}-model", ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": "sagemaker-emu/llm-sim", "Environment": environment})
        self.sm.create_endpoint_config(EndpointConfigName=f"{name}-config", ExecutionRoleArn=ROLE, ProductionVariants=[{
            "VariantName": "AllTraffic", "InstanceType": "ml.m5.24xlarge", "RoutingConfig": routing,
            "InitialInstanceCount": -(-components * instances // 90)}])  # 96 vCPUs each, a few spare
        self.sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
        self.sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
        names = [f"{name}-ic{k}" for k in range(components)]
        for ic in names:
            self.sm.create_inference_component(
                InferenceComponentName=ic, EndpointName=name, VariantName="AllTraffic",
                Specification={"ModelName": f"{name}-model", "ComputeResourceRequirements": {
                    "NumberOfCpuCoresRequired": 1, "MinMemoryRequiredInMb": 1024}},
                RuntimeConfig={"CopyCount": instances})
        for ic in names:
            while self.sm.describe_inference_component(InferenceComponentName=ic)["InferenceComponentStatus"] == "Creating":
                time.sleep(0.1)
        view = self.emulator.endpoint_view(name)["inference_components"]
        return {ic: view[ic]["copies"] for ic in names}

    def remove(self, name: str) -> None:
        components = self.sm.list_inference_components(EndpointNameEquals=name, MaxResults=100)["InferenceComponents"]
        for ic in components:
            self.sm.delete_inference_component(InferenceComponentName=ic["InferenceComponentName"])
        while self.sm.list_inference_components(EndpointNameEquals=name)["InferenceComponents"]:
            time.sleep(0.1)
        self.sm.delete_endpoint(EndpointName=name)
        self.sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
        self.sm.delete_endpoint_config(EndpointConfigName=f"{name}-config")
        self.sm.delete_model(ModelName=f"{name}-model")

    def stop(self) -> None:
        self.emulator.stop()
        if self.cluster:
            self.cluster.stop()


# ------------------------------------------------------------------ one call


def _call(conn: http.client.HTTPConnection, path: str, body: bytes, t0: float,
          component: str | None = None) -> tuple[float | None, bytes]:
    """Send one request and read the whole answer; returns the time from `t0` to its first body
    byte, and the body."""
    headers = {"Content-Type": "application/json", **({IC_HEADER: component} if component else {})}
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    first = resp.read1(65536)
    ttft = time.perf_counter() - t0 if first else None
    answer = first + resp.read()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}")
    return ttft, answer


def _cached_tokens(answer: bytes) -> tuple[int, int] | None:
    """(cached, prompt) tokens from llm-sim's TGI-style `details`, if the answer has them."""
    try:
        details = json.loads(answer)[0]["details"]
        return details["cached_tokens"], details["prompt_tokens"]
    except (ValueError, LookupError, TypeError):
        return None


class CentralQueue:
    """The ideal: one FIFO queue; each request goes to the least busy instance with room, the
    fastest of them when `speeds` are given, else one of them at random."""

    def __init__(self, addresses: list[tuple[str, int]], capacity: int, rng: random.Random,
                 speeds: list[float] | None = None) -> None:
        self.running = [0] * len(addresses)
        self.addresses = addresses  # each instance's (host, port)
        self.capacity = capacity
        self.rng, self.speeds = rng, speeds
        self._waiting: deque[object] = deque()
        self._cond = threading.Condition()

    def acquire(self) -> int:
        ticket = object()
        with self._cond:
            self._waiting.append(ticket)
            self._cond.wait_for(lambda: self._waiting[0] is ticket and min(self.running) < self.capacity)
            self._waiting.popleft()
            fewest = min(self.running)
            tied = [i for i, n in enumerate(self.running) if n == fewest]
            speeds = self.speeds
            index = max(tied, key=lambda i: speeds[i]) if speeds else tied[self.rng.randrange(len(tied))]
            self.running[index] += 1
            self._cond.notify_all()
            return index

    def release(self, index: int) -> None:
        with self._cond:
            self.running[index] -= 1
            self._cond.notify_all()


# ------------------------------------------------------------------ one point


def run_point(emu: Emulator, workload: Workload, profile: str, users: int, instances: int, strategy: str,
              duration: float, warmup: float, time_scale: float, seed: int, stream: bool,
              think_s: float, components: int = 0, fleet: str = "uniform") -> PointResult:
    name = f"bench-{fleet}-{profile}-{users}x{instances}-{SHORT[strategy].lower()}"
    env = {"LLM_SIM_PROFILE": profile, "LLM_SIM_TIME_SCALE": str(time_scale)}
    deployed = emu.deploy(name, instances, strategy, env, components, fleet)
    targets = list(deployed)  # user n calls targets[n % len]: the endpoint, or one component
    path = f"/endpoints/{name}/invocations" + ("-response-stream" if stream else "")
    queues = {t: CentralQueue([(i["host"], i["port"]) for i in workers], CAPACITY[profile], random.Random(seed),
                              [sum(speeds(i["instance_type"])) for i in workers] if strategy == "IDEAL_FAST" else None)
              for t, workers in deployed.items()} if strategy in CENTRAL else {}
    start = time.perf_counter()
    window = (start + warmup, start + warmup + duration)
    samples: list[tuple[float, float, float | None, tuple | None]] = []  # (started, latency, ttft, cached)
    details = workload.shares_prefixes and not stream  # ask llm-sim how much of each prompt was cached
    errors = [0]
    lock = threading.Lock()

    def user(n: int) -> None:
        rng = user_rng(seed, n)
        component = targets[n % len(targets)]
        queue = queues.get(component)
        conns: dict[int, http.client.HTTPConnection] = {}
        while time.perf_counter() < window[1]:
            body, _ = workload.request(rng, n)
            if stream or details:
                request = json.loads(body)
                if stream:
                    request["stream"] = True
                if details:
                    request["parameters"]["details"] = True
                body = json.dumps(request).encode()
            t0 = time.perf_counter()  # the central queue's wait is part of the ideal's latency
            target = queue.acquire() if queue else -1
            host, port, p = ((*queue.addresses[target], "/invocations") if queue else (emu.host, emu.port, path))
            conn = conns.get(target) or conns.setdefault(target, http.client.HTTPConnection(host, port, timeout=600))
            try:
                ttft, answer = _call(conn, p, body, t0, None if queue else component)
                latency = time.perf_counter() - t0
                cached = _cached_tokens(answer) if details else None
                with lock:
                    samples.append((t0, latency, ttft, cached))
            except (OSError, RuntimeError, http.client.HTTPException):
                errors[0] += 1
                conn.close()
                conns.pop(target, None)
            finally:
                if queue:
                    queue.release(target)
            if think_s:
                time.sleep(rng.expovariate(1 / think_s))
        for c in conns.values():
            c.close()

    threads = [threading.Thread(target=user, args=(n,), daemon=True) for n in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    emu.remove(name)
    measured = [s for s in samples if window[0] <= s[0] < window[1]]
    done_in_window = sum(1 for s in samples if window[0] <= s[0] + s[1] <= window[1])
    lat = sorted(s[1] for s in measured)
    ttfts = sorted(s[2] for s in measured if s[2] is not None) if stream else []
    cached = [s[3] for s in measured if s[3] is not None]
    modelled = profile == "serial" and not components and strategy in queueing.STRATEGIES and not workload.shares_prefixes
    model = queueing.simulate(workload, users, queueing.fleet_types(fleet, instances), strategy, seed=seed,
                              warmup=warmup, duration=duration, time_scale=time_scale, think_s=think_s) if modelled else None
    return PointResult(
        workload=workload.name, profile=profile, users=users, instances=instances, strategy=strategy,
        requests=len(measured), errors=errors[0], p50_s=percentile(lat, 50), p90_s=percentile(lat, 90),
        p99_s=percentile(lat, 99), ttft_p50_s=percentile(ttfts, 50) if ttfts else None,
        ttft_p99_s=percentile(ttfts, 99) if ttfts else None, per_minute=done_in_window / duration * 60,
        cached_share=sum(c for c, _ in cached) / max(1, sum(p for _, p in cached)) if cached else None,
        fleet=fleet, backend=emu.backend, model_p99_s=model.p99_s if model else None)


def call_overhead(emu: Emulator, calls: int = 2000) -> tuple[float, float]:
    """p50 and p99 seconds of `calls` sequential InvokeEndpoint calls to one echo instance that
    answers at once: what the path to an instance costs, with no model time to hide it."""
    deploy(emu.sm, "bench-overhead", RoutingConfig={"RoutingStrategy": "RANDOM"})
    conn = http.client.HTTPConnection(emu.host, emu.port, timeout=60)
    took = []
    try:
        for _ in range(calls):
            t0 = time.perf_counter()
            _call(conn, "/endpoints/bench-overhead/invocations", b"{}", t0)
            took.append(time.perf_counter() - t0)
    finally:
        conn.close()
        emu.remove("bench-overhead")
    took.sort()
    return percentile(took, 50), percentile(took, 99)


# ------------------------------------------------------------------ report


def report(results: list[PointResult], time_scale: float) -> str:
    lines = []
    groups: dict[tuple, list[PointResult]] = {}
    for r in results:
        groups.setdefault((r.workload, r.profile, r.fleet, r.backend), []).append(r)
    for (workload, profile, fleet, backend), rows in groups.items():
        on = "" if fleet == "uniform" and len({r.fleet for r in results}) == 1 else f", {_fleet_name(fleet)}"
        on += "" if backend == "local" and len({r.backend for r in results}) == 1 else f", {_backend_name(backend)}"
        lines.append(f"\n{workload}, profile {profile}{on} (latencies in seconds at time scale {time_scale:g}; "
                     f"divide by it for full-scale times)")
        base = {(r.users, r.instances): r for r in rows if r.strategy == "RANDOM"}
        ideal = {(r.users, r.instances): r for r in rows if r.strategy == "IDEAL"}
        fast = {(r.users, r.instances): r for r in rows if r.strategy == "IDEAL_FAST"}
        has_ttft = any(r.ttft_p50_s is not None for r in rows)
        has_cache = any(r.cached_share is not None for r in rows)
        has_model = any(r.model_p99_s is not None for r in rows)
        headers = ["users x inst", "strategy", "requests", "p50", "p90", "p99"]
        headers += ["ttft p50", "ttft p99"] if has_ttft else []
        headers += ["cached"] if has_cache else []
        headers += ["req/min", "p99 / RANDOM", "thr / RANDOM", "p99 / IDEAL"] + (["p99 / IDEAL-FAST"] if fast else [])
        headers += ["model p99", "p99 / model"] if has_model else []
        body = []
        for r in sorted(rows, key=lambda r: (r.instances, r.users, STRATEGIES.index(r.strategy))):
            b, i = base.get((r.users, r.instances)), ideal.get((r.users, r.instances))
            row = [f"{r.users} x {r.instances}", SHORT[r.strategy], r.requests, f"{r.p50_s:.3f}",
                   f"{r.p90_s:.3f}", f"{r.p99_s:.3f}"]
            if has_ttft:
                row += [f"{r.ttft_p50_s:.3f}" if r.ttft_p50_s is not None else "-",
                        f"{r.ttft_p99_s:.3f}" if r.ttft_p99_s is not None else "-"]
            if has_cache:
                row += [f"{r.cached_share:.0%}" if r.cached_share is not None else "-"]
            row += [f"{r.per_minute:.0f}",
                    f"{r.p99_s / b.p99_s:.2f}" if b else "-",
                    f"{r.per_minute / b.per_minute:.2f}" if b and b.per_minute else "-",
                    f"{r.p99_s / i.p99_s:.2f}" if i else "-"]
            if fast:
                f = fast.get((r.users, r.instances))
                row.append(f"{r.p99_s / f.p99_s:.2f}" if f else "-")
            if has_model:
                m = r.model_p99_s
                row += [f"{m:.3f}", f"{r.p99_s / m:.2f}"] if m else ["-", "-"]
            body.append(row)
        lines.append(table(headers, body))
    if len({r.fleet for r in results}) > 1:
        lines.append(_fleets_side_by_side(results))
    if len({r.backend for r in results}) > 1:
        lines.append(_backends_side_by_side(results))
    return "\n".join(lines)


def _backend_name(backend: str) -> str:
    return "instances as Ray actors (--fleet ray)" if backend == "ray" else "instances as local processes"


def _backends_side_by_side(results: list[PointResult]) -> str:
    """Each point on both backends: latencies, throughput, and what Ray adds to a call (the
    p50 difference, in real milliseconds: the overhead is not simulated, so not scaled)."""
    by = {(r.profile, r.fleet, r.users, r.instances, r.strategy, r.backend): r for r in results}
    rows = []
    for profile, fleet, users, instances, strategy in sorted({k[:5] for k in by}, key=lambda k: (
            k[0], k[1], k[3], k[2], STRATEGIES.index(k[4]))):
        local, ray = by.get((profile, fleet, users, instances, strategy, "local")), \
            by.get((profile, fleet, users, instances, strategy, "ray"))
        if local is None or ray is None:
            continue
        rows.append([profile, fleet, f"{users} x {instances}", SHORT[strategy], f"{local.p50_s:.3f}", f"{ray.p50_s:.3f}",
                     f"{(ray.p50_s - local.p50_s) * 1000:+.1f}", f"{local.p99_s:.3f}", f"{ray.p99_s:.3f}",
                     f"{ray.p99_s / local.p99_s:.2f}" if local.p99_s else "-",
                     f"{ray.per_minute / local.per_minute:.2f}" if local.per_minute else "-"])
    return "\nbackends side by side (same run):\n" + table(
        ["profile", "fleet", "users x inst", "strategy", "p50 local", "p50 ray", "ray adds at p50 (ms)",
         "p99 local", "p99 ray", "p99 ray / local", "thr ray / local"], rows)


def _fleet_name(fleet: str) -> str:
    if fleet == "mixed":
        return "mixed fleet (" + " + ".join(f"{share:.0%} {t}" for t, share in MIXED) + ")"
    return f"uniform fleet ({UNIFORM})"


def _fleets_side_by_side(results: list[PointResult]) -> str:
    """Each strategy's p99 against RANDOM's and the ideal's, on each fleet, in the same run."""
    by = {(r.profile, r.users, r.instances, r.fleet, r.strategy): r for r in results}
    fleets = [f for f in FLEETS if any(r.fleet == f for r in results)]
    headers = ["profile", "users x inst", "strategy"]
    against = ["RANDOM", "IDEAL"] + (["IDEAL_FAST"] if any(r.strategy == "IDEAL_FAST" for r in results) else [])
    headers += [f"{f}: p99 / {SHORT[a]}" for a in against for f in fleets]
    rows = []
    for profile, users, instances in sorted({(r.profile, r.users, r.instances) for r in results}):
        for strategy in STRATEGIES:
            if strategy == "RANDOM" or strategy in CENTRAL or not any(k[4] == strategy for k in by):
                continue
            row: list[Any] = [profile, f"{users} x {instances}", SHORT[strategy]]
            for reference in against:
                for f in fleets:
                    r = by.get((profile, users, instances, f, strategy))
                    b = by.get((profile, users, instances, f, reference))
                    row.append(f"{r.p99_s / b.p99_s:.2f}" if r and b and b.p99_s else "-")
            rows.append(row)
    return "\nfleets side by side (same run):\n" + table(headers, rows)


def plot(results: list[PointResult], path: str) -> bool:
    """p99 and throughput against instances, one line per strategy; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    profiles = sorted({r.profile for r in results})
    fig, axes = plt.subplots(2, len(profiles), figsize=(6 * len(profiles), 8), squeeze=False)
    for col, profile in enumerate(profiles):
        fleets = [f for f in FLEETS if any(r.fleet == f for r in results)]
        for strategy in STRATEGIES:
            for fleet in fleets:
                rows = sorted((r for r in results if r.profile == profile and r.strategy == strategy
                               and r.fleet == fleet), key=lambda r: r.instances)
                if not rows:
                    continue
                xs = [r.instances for r in rows]
                style = ("--" if fleet == "uniform" else "-.") if strategy in CENTRAL else \
                    ("-" if fleet == "uniform" else ":")
                label = SHORT[strategy] + ("" if len(fleets) == 1 else f" ({fleet})")
                color = f"C{STRATEGIES.index(strategy)}"  # one colour per strategy, a line style per fleet
                axes[0][col].plot(xs, [r.p99_s for r in rows], style, color=color, marker="o", label=label)
                axes[1][col].plot(xs, [r.per_minute for r in rows], style, color=color, marker="o", label=label)
        axes[0][col].set_title(f"{results[0].workload}, {profile}: p99 latency")
        axes[0][col].set_ylabel("p99 (s, scaled)")
        axes[1][col].set_title(f"{results[0].workload}, {profile}: throughput")
        axes[1][col].set_ylabel("requests per minute")
        points = sorted({(r.instances, r.users) for r in results if r.profile == profile})
        ratios = {users / instances for instances, users in points}
        label = (f"instances (users = {ratios.pop():g} x instances)" if len(ratios) == 1
                 else "instances (" + ", ".join(f"{u} users on {i}" for i, u in points) + ")")
        for ax in (axes[0][col], axes[1][col]):
            ax.set_xlabel(label)
            ax.set_xticks([instances for instances, _ in points])  # whole instances, no 2.5
            ax.grid(alpha=0.3)
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def _progress(done: int, total: int, label: str, started: float) -> None:
    width = 30
    filled = int(width * done / total)
    elapsed = time.perf_counter() - started
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {elapsed:5.0f}s {label:<45}")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagemaker-emu bench routing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="codegen")
    parser.add_argument("--points", default=DEFAULT_POINTS, help="users x instances, comma separated")
    parser.add_argument("--strategies", default="RANDOM,LEAST_OUTSTANDING_REQUESTS,IDEAL",
                        help=f"from {', '.join(STRATEGIES)}")
    parser.add_argument("--profiles", default="serial,batch16", help="llm-sim instance profiles: serial, batch16")
    parser.add_argument("--duration", type=float, default=12.0, help="measured seconds per point")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds per point before measuring")
    parser.add_argument("--time-scale", type=float, default=0.05, help="multiplies every simulated latency")
    parser.add_argument("--think-time", type=float, default=0.0, help="mean seconds a user waits between calls")
    parser.add_argument("--stream", action="store_true", help="use InvokeEndpointWithResponseStream; adds TTFT")
    parser.add_argument("--system-prompts", type=int, default=None,
                        help="chat-shared-prefix: how many distinct system prompts (default 8)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default=None, help="write every number to this file")
    parser.add_argument("--plot", default=None, help="write a PNG plot here (needs matplotlib)")
    parser.add_argument("--inference-components", type=int, default=0, metavar="N",
                        help="run each point on N inference components with that many copies each")
    parser.add_argument("--fleet", default="uniform",
                        help="uniform (ml.g5.2xlarge), mixed (half ml.g5.2xlarge, half ml.g6e.2xlarge), or both: "
                        "uniform,mixed")
    parser.add_argument("--backend", default="local",
                        help="where instances run, comma separated: local processes, or ray (a three-node Ray "
                        "cluster on this machine, --fleet ray); both: side by side, each point on each in turn")
    parser.add_argument("--ray-python", default=None,
                        help="a Python with Ray and sagemaker-emu, for --backend ray (default: .venv-ray's, else this one)")
    parser.add_argument("--quick", action="store_true", help="a tiny run that checks the bench works (seconds)")
    args = parser.parse_args(argv)
    if args.quick:
        args.points, args.profiles, args.duration, args.warmup = "3x2", "serial", 1.5, 0.3
        args.time_scale = min(args.time_scale, 0.02)
    sizes = parse_points(parser, args.points)
    strategies = listed(parser, args.strategies, STRATEGIES, "strategy")
    profiles = listed(parser, args.profiles, list(CAPACITY), "profile")
    fleets = listed(parser, args.fleet, FLEETS, "fleet")
    if "mixed" in fleets and args.inference_components:
        parser.error("--fleet mixed runs on instances, not inference components")
    backends = listed(parser, args.backend, BACKENDS, "backend")
    ray_python = args.ray_python or (".venv-ray/bin/python" if os.path.exists(".venv-ray/bin/python") else sys.executable)
    workload = WORKLOADS[args.workload]
    if args.system_prompts is not None:
        if args.workload != "chat-shared-prefix":
            parser.error("--system-prompts applies to the chat-shared-prefix workload only")
        from sagemaker_emu.bench.workloads import ChatSharedPrefix

        workload = ChatSharedPrefix(workload.name, workload.summary.replace("8 system prompts",
                                                                            f"{args.system_prompts} system prompts"),
                                    system_prompts=args.system_prompts)
    runs = [(p, u, n, s, f, b) for p in profiles for (u, n) in sizes for f in fleets for s in strategies
            for b in backends]
    emus: dict[str, Emulator] = {}
    results: list[PointResult] = []
    started = time.perf_counter()
    try:
        for b in backends:
            emus[b] = Emulator(args.seed, backend=b, ray_python=ray_python)
        for k, (profile, users, instances, strategy, fleet, b) in enumerate(runs):
            _progress(k, len(runs), f"{b} {fleet} {profile} {users}x{instances} {SHORT[strategy]}", started)
            results.append(run_point(emus[b], workload, profile, users, instances, strategy, args.duration,
                                     args.warmup, args.time_scale, args.seed, args.stream, args.think_time,
                                     args.inference_components, fleet))
        _progress(len(runs), len(runs), "done", started)
        sys.stderr.write("\n")
        overheads: dict[str, tuple[float, float]] = ({b: call_overhead(emus[b]) for b in backends}
                                                     if len(backends) > 1 else {})
    finally:
        for emu in emus.values():
            emu.stop()
    if args.inference_components:
        print(f"on inference components: {args.inference_components} per endpoint, 'instances' are copies of each")
    print(f"bench routing: workload {workload.name} ({workload.summary}); time scale {args.time_scale:g}; "
          f"{args.duration:g} s measured per point after {args.warmup:g} s warm-up; seed {args.seed}; "
          f"{os.cpu_count()} CPUs; {time.perf_counter() - started:.0f} s in all")
    print(report(results, args.time_scale))
    if overheads:
        print("\nwhat each backend adds to a call: 2000 sequential calls to one echo instance that answers at once\n"
              + table(["backend", "p50 ms", "p99 ms"], [[b, f"{p50 * 1000:.2f}", f"{p99 * 1000:.2f}"]
                                                      for b, (p50, p99) in overheads.items()])
              + f"\nRay adds {(overheads['ray'][0] - overheads['local'][0]) * 1000:+.2f} ms per call at p50"
              if "ray" in overheads and "local" in overheads else "")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": [asdict(r) for r in results],
                       "call_overhead_s": {b: {"p50": p50, "p99": p99} for b, (p50, p99) in overheads.items()}},
                      f, indent=2)
    if args.plot:
        print(f"\nplot: {args.plot}" if plot(results, args.plot) else "\nplot skipped: matplotlib is not installed")
    return 0

