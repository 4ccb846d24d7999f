"""`sagemaker-emu bench record`: what recording one invocation costs, with and without
CloudWatch's metric store behind the metrics (the record step's share of the invoke path).

The record step's call (`Metrics.invoked`) is timed in a loop, as the runtime makes it after
every answer: once with no sink (Prometheus counters only, as before CloudWatch) and once
feeding the CloudWatch store (eight datapoints into per-second buckets), interleaved over
rounds so the machine's drift hits both alike. Printed: microseconds per call, each side, and
the difference."""

from __future__ import annotations

import argparse
import statistics
import time

from sagemaker_emu.bench.stats import table
from sagemaker_emu.clock import Clock
from sagemaker_emu.cloudwatch.backend import CloudWatch
from sagemaker_emu.metrics import Metrics


def _time(metrics: Metrics, calls: int) -> float:
    t0 = time.perf_counter()
    for n in range(calls):
        metrics.invoked("bench", "AllTraffic", f"AllTraffic-{n % 4}", model_s=0.001, overhead_s=0.0002,
                        status=200, instances=4, concurrency=2, region="us-east-1")
    return (time.perf_counter() - t0) / calls * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagemaker-emu bench record", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20000, help="calls per round (default: 20000)")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
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
