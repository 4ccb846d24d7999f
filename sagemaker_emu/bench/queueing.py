"""`sagemaker-emu bench queueing`: `bench routing`'s serial experiment as queueing arithmetic,
with no process, no HTTP and no clock.

Each llm-sim instance of profile `serial` is one server with a FIFO queue. Its service time is
llm-sim's own (`Profile.prefill_s` and `step_s`, at the instance type's speed). The closed-loop
users send the very requests `bench routing`'s users of the same seed send, in the same order,
and think the same times. RANDOM and LEAST_OUTSTANDING_REQUESTS are the emulator's own strategy
objects (routing/strategies.py) reading each server's requests in flight. IDEAL and IDEAL_FAST
are `bench routing`'s central queue.

What is left is the strategy and the workload: none of the emulator's cost, none of the
machine's. So the model answers two questions about a number `bench routing` measures:
- whose is a gap, the strategy's or the emulator's (`bench routing` prints each serial
  point's p99 over the model's, same seed);
- how much one run of `--duration` seconds strays from the long run (`--runs` seeds, against
  one run of `--long` seconds).
Workloads whose prompts share prefixes are not modelled (the servers keep no cache), nor are the
batching profiles.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import statistics
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field

from sagemaker_emu.bench.stats import listed, parse_points, percentile, table
from sagemaker_emu.bench.workloads import WORKLOADS, Workload, user_rng
from sagemaker_emu.fleet.speed import speeds, worker_env
from sagemaker_emu.routing.strategies import RouteRequest, strategy_for
from sagemaker_emu.worker.builtin.llm_sim import Profile, count_tokens

STRATEGIES = ("RANDOM", "LEAST_OUTSTANDING_REQUESTS", "IDEAL", "IDEAL_FAST")
CENTRAL = ("IDEAL", "IDEAL_FAST")
SHORT = {"RANDOM": "RANDOM", "LEAST_OUTSTANDING_REQUESTS": "LOR", "IDEAL": "IDEAL", "IDEAL_FAST": "IDEAL-FAST"}
FLEETS = ("uniform", "mixed")
UNIFORM = "ml.g5.2xlarge"
MIXED = (("ml.g5.2xlarge", 0.5), ("ml.g6e.2xlarge", 0.5))  # as `bench routing --fleet mixed` deploys it


def fleet_types(fleet: str, instances: int) -> list[str]:
    """Each instance's type on `bench routing`'s uniform or mixed fleet of `instances`: the
    first pool gets its share (rounded), the second the rest."""
    if fleet == "uniform":
        return [UNIFORM] * instances
    first = round(instances * MIXED[0][1])
    return [MIXED[0][0]] * first + [MIXED[1][0]] * (instances - first)


@dataclass(eq=False)
class Server:
    """One serial llm-sim instance; `in_flight` is what a strategy reads, as of a fleet instance."""

    instance_id: str
    profile: Profile
    speed: float  # prefill and decode speed added up: IDEAL_FAST's order
    in_flight: int = 0
    queue: deque = field(default_factory=deque)  # requests waiting behind the running one

    def seconds(self, body: bytes) -> float:
        """What llm-sim takes for this request alone: prefill, then one step per output token."""
        request = json.loads(body)
        n_out = min(request["parameters"]["max_new_tokens"], self.profile.max_output_tokens)
        return self.profile.prefill_s(count_tokens(request["inputs"])) + n_out * self.profile.step_s()


@dataclass
class Outcome:
    requests: int  # started in the measured window
    p50_s: float
    p90_s: float
    p99_s: float
    per_minute: float  # finished in the window


def simulate(workload: Workload, users: int, instance_types: list[str], strategy: str, *, seed: int,
             warmup: float, duration: float, time_scale: float, think_s: float = 0.0) -> Outcome:
    """One `bench routing` point, served by the model: requests started in [warmup,
    warmup + duration) are measured, as there."""
    if workload.shares_prefixes:
        raise ValueError(f"workload {workload.name} shares prefixes; the model keeps no cache")
    servers = [Server(f"i-{k}", Profile.from_env({**worker_env(t), "LLM_SIM_PROFILE": "serial",
                                                   "LLM_SIM_TIME_SCALE": repr(time_scale)}), sum(speeds(t)))
               for k, t in enumerate(instance_types)]
    router = None if strategy in CENTRAL else strategy_for({"RoutingStrategy": strategy}, seed)
    ties = random.Random(seed)
    central: deque = deque()  # (user, started, body) waiting for any free server
    rngs = [user_rng(seed, n) for n in range(users)]
    end = warmup + duration
    events: list = []  # (time, order, server or None, user, started, body); None: the user sends
    order = 0
    samples: list[tuple[float, float]] = []

    def start(server: Server, now: float, job: tuple) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (now + server.seconds(job[2]), order, server, *job))

    def send(user: int, now: float) -> None:
        job = (user, now, workload.request(rngs[user], user)[0])
        if router is not None:
            server = router.choose(RouteRequest(), servers)
        else:
            free = [s for s in servers if not s.in_flight]
            if not free:
                central.append(job)
                return
            server = max(free, key=lambda s: s.speed) if strategy == "IDEAL_FAST" else free[ties.randrange(len(free))]
        server.in_flight += 1
        if server.in_flight > 1:
            server.queue.append(job)
        else:
            start(server, now, job)

    for n in range(users):
        send(n, 0.0)
    while events:
        now, _, server, user, started, _ = heapq.heappop(events)
        if server is not None:
            samples.append((started, now - started))
            server.in_flight -= 1
            if server.queue:
                start(server, now, server.queue.popleft())
            elif central:
                server.in_flight += 1
                start(server, now, central.popleft())
            if think_s:  # drawn after the request, from the same generator, as bench routing's users do
                order += 1
                heapq.heappush(events, (now + rngs[user].expovariate(1 / think_s), order, None, user, now, b""))
                continue
        if now < end:
            send(user, now)
    latencies = sorted(latency for started, latency in samples if warmup <= started < end)
    done = sum(1 for started, latency in samples if warmup <= started + latency <= end)
    return Outcome(len(latencies), percentile(latencies, 50), percentile(latencies, 90), percentile(latencies, 99),
                   done / duration * 60)


# ------------------------------------------------------------------ the command


def _spread(values: list[float]) -> str:
    """Median and range of per-run ratios."""
    return f"{statistics.median(values):.2f} [{min(values):.2f}, {max(values):.2f}]"


def main(argv: list[str] | None = None) -> int:
    modelled = sorted(name for name, w in WORKLOADS.items() if not w.shares_prefixes)
    parser = argparse.ArgumentParser(prog="sagemaker-emu bench queueing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=modelled, default="codegen")
    parser.add_argument("--points", default="40x10", help="users x instances, comma separated")
    parser.add_argument("--fleet", default="uniform,mixed", help="uniform, mixed, or both (as bench routing)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help=f"from {', '.join(STRATEGIES)}")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds of one run (as bench routing)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--time-scale", type=float, default=0.05)
    parser.add_argument("--think-time", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1, help="the first seed; runs take seed, seed + 1, ...")
    parser.add_argument("--runs", type=int, default=20, help="runs of --duration seconds, one seed each")
    parser.add_argument("--long", type=float, default=3000.0, help="measured seconds of the long run (seed --seed)")
    parser.add_argument("--json", default=None, help="write every number to this file")
    args = parser.parse_args(argv)
    sizes = parse_points(parser, args.points)
    strategies = listed(parser, args.strategies, STRATEGIES, "strategy")
    fleets = listed(parser, args.fleet, FLEETS, "fleet")
    if args.runs < 1 or args.long <= 0 or args.duration <= 0:
        parser.error("--runs, --duration and --long must be positive")
    workload = WORKLOADS[args.workload]
    began = time.perf_counter()
    long_rows, run_rows, record = [], [], []
    common = {"warmup": args.warmup, "time_scale": args.time_scale, "think_s": args.think_time}
    for fleet in fleets:
        for users, instances in sizes:
            types = fleet_types(fleet, instances)
            sys.stderr.write(f"{fleet} {users}x{instances}: the long run, then {args.runs} runs ...\n")
            long = {s: simulate(workload, users, types, s, seed=args.seed, duration=args.long, **common)
                    for s in strategies}
            runs = [{s: simulate(workload, users, types, s, seed=seed, duration=args.duration, **common)
                     for s in strategies} for seed in range(args.seed, args.seed + args.runs)]
            record.append({"fleet": fleet, "users": users, "instances": instances,
                           "long": {s: asdict(o) for s, o in long.items()},
                           "runs": [{s: asdict(o) for s, o in r.items()} for r in runs]})
            for s, o in long.items():
                long_rows.append([fleet, f"{users} x {instances}", SHORT[s], o.requests, f"{o.p50_s:.3f}",
                                  f"{o.p99_s:.3f}", f"{o.per_minute:.0f}",
                                  *(f"{o.p99_s / long[r].p99_s:.3f}" if r in long else "-" for r in ("RANDOM", "IDEAL"))])
                run_rows.append([fleet, f"{users} x {instances}", SHORT[s],
                                 *(_spread([r[s].p99_s / r[ref].p99_s for r in runs]) if ref in long else "-"
                                   for ref in ("RANDOM", "IDEAL"))])
    print(f"bench queueing: workload {workload.name} ({workload.summary}); llm-sim serial; time scale "
          f"{args.time_scale:g}; think time {args.think_time:g} s; {time.perf_counter() - began:.0f} s")
    print(f"\nthe long run: {args.long:g} s measured after {args.warmup:g} s, seed {args.seed}\n" + table(
        ["fleet", "users x inst", "strategy", "requests", "p50", "p99", "req/min", "p99 / RANDOM", "p99 / IDEAL"],
        long_rows))
    print(f"\n{args.runs} runs of {args.duration:g} s (seeds {args.seed} to {args.seed + args.runs - 1}): "
          "median [min, max] of each run's ratio\n"
          + table(["fleet", "users x inst", "strategy", "p99 / RANDOM", "p99 / IDEAL"], run_rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "points": record}, f, indent=2)
    return 0
