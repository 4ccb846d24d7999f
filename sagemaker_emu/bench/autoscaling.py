"""`sagemaker-emu bench autoscaling`: a load ramp against a target-tracking policy, over time.

One echo endpoint (each call takes `--latency-ms`) starts with one instance, registered with
Application Auto Scaling (1 to `--max` instances) and a target-tracking policy on
SageMakerVariantInvocationsPerInstance (`--target` per instance per minute of the clock).
The server runs at `--clock-speed` (default 60: a minute of alarm periods is one second).
Closed-loop callers ramp up, hold, and drop to a trickle. Each second the benchmark samples
the instance count, the calls made, the invocations per instance and the p99 latency that
second. Printed: the table, and the seconds from the ramp's start to the first scale-out
and to the scale-in; with `--plot PNG`, the three series against time (needs matplotlib).
"""

from __future__ import annotations

import argparse
import subprocess
import threading
import time

from sagemaker_emu.bench.stats import percentile, table
from sagemaker_emu.testing import EmulatorProcess, deploy

DIMENSION = "sagemaker:variant:DesiredInstanceCount"


class _Callers:
    def __init__(self, rt, latencies: list[tuple[float, float]]) -> None:
        self.rt, self.latencies = rt, latencies
        self.threads: list[tuple[threading.Thread, threading.Event]] = []
        self.pause = 0.0
        self.errors = 0

    def resize(self, count: int, pause: float = 0.0) -> None:
        self.pause = pause
        while len(self.threads) > count:
            _, stop = self.threads.pop()
            stop.set()
        while len(self.threads) < count:
            stop = threading.Event()
            thread = threading.Thread(target=self._call, args=(stop,), daemon=True)
            self.threads.append((thread, stop))
            thread.start()

    def _call(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                self.rt.invoke_endpoint(EndpointName="scaling", Body=b"x")
                self.latencies.append((time.time(), time.perf_counter() - started))
            except Exception:
                self.errors += 1
            stop.wait(self.pause)


def run(args) -> tuple[list[list[str]], dict]:
    emulator = EmulatorProcess("--clock-speed", str(args.clock_speed), log=subprocess.DEVNULL)
    try:
        sm, rt, aas = emulator.client(), emulator.client("sagemaker-runtime"), emulator.client("application-autoscaling")
        deploy(sm, "scaling", environment={"ECHO_LATENCY_MS": str(args.latency_ms)})
        resource = "endpoint/scaling/variant/AllTraffic"
        aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=DIMENSION,
                                     MinCapacity=1, MaxCapacity=args.max)
        aas.put_scaling_policy(
            PolicyName="bench", ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=DIMENSION,
            PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
                "TargetValue": args.target, "ScaleOutCooldown": 60, "ScaleInCooldown": 60,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
        latencies: list[tuple[float, float]] = []
        callers = _Callers(rt, latencies)
        phases = [(args.ramp_s, "ramp"), (args.hold_s, "hold"), (args.trickle_s, "trickle")]
        rows, marks, start = [], {}, time.time()
        second = 0
        for seconds, phase in phases:
            for _ in range(int(seconds)):
                if phase == "ramp":
                    callers.resize(max(1, round(args.callers * (second + 1) / args.ramp_s)))
                elif phase == "hold":
                    callers.resize(args.callers)
                else:
                    callers.resize(1, pause=0.5)
                time.sleep(max(0.0, start + second + 1 - time.time()))
                count = sm.describe_endpoint(EndpointName="scaling")["ProductionVariants"][0]["CurrentInstanceCount"]
                window = sorted(d for t, d in latencies if start + second <= t < start + second + 1)
                if count > 1 and "scale-out" not in marks:
                    marks["scale-out"] = second + 1
                if phase == "trickle" and count == 1 and "scale-in" not in marks and "scale-out" in marks:
                    marks["scale-in"] = second + 1
                rows.append([str(second + 1), phase, str(len(callers.threads)), str(count), str(len(window)),
                             f"{len(window) / max(1, count):.1f}",
                             f"{percentile(window, 99) * 1000:.0f}" if window else "-"])
                second += 1
        callers.resize(0)
        marks["errors"] = callers.errors
        return rows, marks
    finally:
        emulator.stop()


def plot(rows: list[list[str]], path: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    t = [int(r[0]) for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    for ax, column, label in ((axes[0], 3, "instances"), (axes[1], 5, "invocations per instance (per s)"),
                              (axes[2], 6, "p99 latency (ms)")):
        ax.plot(t, [float(r[column]) if r[column] != "-" else float("nan") for r in rows], marker=".")
        ax.set_ylabel(label)
    axes[-1].set_xlabel("seconds of wall time")
    fig.tight_layout()
    fig.savefig(path)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagemaker-emu bench autoscaling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clock-speed", type=float, default=60.0)
    parser.add_argument("--target", type=float, default=20.0, help="invocations per instance per period (default: 20)")
    parser.add_argument("--max", type=int, default=4, help="MaxCapacity (default: 4)")
    parser.add_argument("--callers", type=int, default=8, help="callers at the top of the ramp (default: 8)")
    parser.add_argument("--latency-ms", type=int, default=50, help="each call's time in the model (default: 50)")
    parser.add_argument("--ramp-s", type=int, default=5)
    parser.add_argument("--hold-s", type=int, default=15)
    parser.add_argument("--trickle-s", type=int, default=25)
    parser.add_argument("--plot", default=None, help="write a PNG here (needs matplotlib)")
    args = parser.parse_args(argv)
    rows, marks = run(args)
    print(f"clock speed {args.clock_speed:g}, target {args.target:g} invocations per instance per period, "
          f"{args.callers} callers at the top, {args.latency_ms} ms per call")
    print(table(["s", "phase", "callers", "instances", "calls", "calls per instance", "p99 ms"], rows))
    print(f"first scale-out visible after {marks.get('scale-out', '-')} s; back to one instance after "
          f"{marks.get('scale-in', '-')} s; failed calls: {marks['errors']}")
    if args.plot:
        print(f"plot written to {args.plot}" if plot(rows, args.plot) else "matplotlib is not installed: no plot")
    return 0
