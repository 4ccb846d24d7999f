"""`sagemaker-emu bench record`: what recording one invocation costs, with and without
CloudWatch's metric store behind the metrics (the record step's share of the invoke path).

The record step's call (`Metrics.invoked`) is timed in a loop, as the runtime makes it after
every answer: once with no sink (Prometheus counters only, as before CloudWatch) and once
feeding the CloudWatch store (eight datapoints into per-second buckets), interleaved over
rounds so the machine's drift hits both alike. Printed: microseconds per call, each side, and
the difference.

With `--memory`, it measures instead what one busy variant's invocation metrics hold after
`--hours` of `--rate` calls a second (log-normal latencies), through the same fast path, by
tracemalloc: the store as it is (statistic sets and percentile bins) beside the same eight
series of statistic sets alone."""

from __future__ import annotations

import argparse
import random
import statistics
import time
import tracemalloc

from sagemaker_emu.bench.stats import table
from sagemaker_emu.clock import Clock
from sagemaker_emu.cloudwatch.backend import CloudWatch
from sagemaker_emu.cloudwatch.invocations import InvocationMetrics
from sagemaker_emu.cloudwatch.series import MetricStore
from sagemaker_emu.metrics import Metrics


def _time(metrics: Metrics, calls: int) -> float:
    t0 = time.perf_counter()
    for n in range(calls):
        metrics.invoked("bench", "AllTraffic", f"AllTraffic-{n % 4}", model_s=0.001, overhead_s=0.0002,
                        status=200, instances=4, concurrency=2, region="us-east-1")
    return (time.perf_counter() - t0) / calls * 1e6


def _memory(rate: int, hours: float) -> tuple[float, float]:
    """MB held by one variant's metrics after `hours` at `rate` calls/s: as stored, and as
    statistic sets alone."""
    rng, seconds, start = random.Random(1), int(hours * 3600), 1_700_000_000
    tracemalloc.start()
    store = MetricStore()
    metrics, base = InvocationMetrics(lambda region: store), tracemalloc.get_traced_memory()[0]
    for second in range(seconds):
        for _ in range(rate):
            metrics.add("us-east-1", "bench", "AllTraffic", None, rng.lognormvariate(9, 0.6),
                        rng.lognormvariate(6, 0.3), 200, 0.25, 2.0, start + second)
    metrics.fold()
    stored = tracemalloc.get_traced_memory()[0] - base
    plain = MetricStore()
    base = tracemalloc.get_traced_memory()[0]
    for second in range(seconds):
        for name in ("Invocations", "InvocationsPerInstance", "ModelLatency", "OverheadLatency",
                     "ConcurrentRequestsPerModel", "Invocation4XXErrors", "Invocation5XXErrors", "InvocationModelErrors"):
            plain.put_statistics(("AWS/SageMaker", name, ()), "None", start + second, 1.0, rate, 0.0, 1.0)
    sets_only = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return stored / 1e6, sets_only / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagemaker-emu bench record", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20000, help="calls per round (default: 20000)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--memory", action="store_true", help="measure memory instead (see above)")
    parser.add_argument("--rate", type=int, default=200, help="with --memory: calls a second (default: 200)")
    parser.add_argument("--hours", type=float, default=3.0, help="with --memory: hours of traffic (default: 3, "
                        "the store's retention)")
    args = parser.parse_args(argv)
    if args.memory:
        stored, sets_only = _memory(args.rate, args.hours)
        print(f"one variant, {args.rate} calls/s for {args.hours:g} h; tracemalloc")
        print(table(["metrics store", "MB"], [["statistic sets and percentile bins", f"{stored:.1f}"],
                                              ["statistic sets alone (8 series)", f"{sets_only:.1f}"]]))
        return 0
    cloudwatch = CloudWatch("123456789012", Clock())
    plain, fed = Metrics(), Metrics(sink=cloudwatch)
    without, with_store = [], []
    for _ in range(args.rounds):
        without.append(_time(plain, args.calls))
        with_store.append(_time(fed, args.calls))
    a, b = statistics.median(without), statistics.median(with_store)
    print(f"{args.rounds} rounds of {args.calls} calls; median of rounds")
    print(table(["record step", "us per invocation"], [["Prometheus counters only", f"{a:.2f}"],
                                                        ["and the CloudWatch store", f"{b:.2f}"],
                                                        ["added by CloudWatch", f"{b - a:.2f}"]]))
    return 0
