"""`sagemaker-emu bench replay`: one captured stretch of traffic, replayed through every routing
strategy by AI benchmark jobs (NVIDIA AIPerf), as a SageMaker user would compare them.

1. A source endpoint of llm-sim with DataCaptureConfig (every request captured) takes
   `--requests` chat requests, paced evenly over `--seconds`: a few long system prompts shared
   by many users (`chat-shared-prefix`, what prefix and KV-cache routing are for).
2. It is deleted, which writes the capture files to S3.
3. For each strategy an endpoint of `--instances` llm-sim instances is deployed, and an AI
   benchmark job replays the captured files against it, with their timing (AIPerf's
   `sagemaker_data_capture` loader, `--fixed-schedule`), through the control plane's own API.
4. Printed: each strategy's TTFT and request latency (p50, p99), throughput and errors, with
   ratios against RANDOM, from the archives the jobs wrote; `--plot FILE` draws them.

The capture keeps SageMaker's `inferenceTime`, to the second: the replay starts each second's
requests together, as AIPerf does with SageMaker's own capture files.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sagemaker_emu.bench.stats import table
from sagemaker_emu.bench.workloads import ChatSharedPrefix, lognormal_tokens
from sagemaker_emu.testing import EmulatorProcess, client, deploy, variant

STRATEGIES = ("RANDOM", "LEAST_OUTSTANDING_REQUESTS", "PREFIX_AWARE", "KV_AWARE")
SHORT = {"RANDOM": "RANDOM", "LEAST_OUTSTANDING_REQUESTS": "LOR", "PREFIX_AWARE": "PREFIX", "KV_AWARE": "KV"}
ROLE = "arn:aws:iam::123456789012:role/bench"
CAPTURE = "s3://replay/capture"
ROOT = Path(__file__).resolve().parents[2]


def aiperf() -> str | None:
    for candidate in (os.environ.get("SAGEMAKER_EMU_AIPERF"), str(ROOT / ".venv-aiperf" / "bin" / "aiperf")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _capture(emu: EmulatorProcess, requests: int, seconds: float, instances: int, environment: dict) -> int:
    """The captured stretch of traffic; returns how many requests failed."""
    sm, rt = emu.client(), client(emu.url, "sagemaker-runtime")
    sm.create_model(ModelName="source", PrimaryContainer={"Image": "sagemaker-emu/llm-sim", "Environment": environment})
    sm.create_endpoint_config(EndpointConfigName="source", ProductionVariants=[variant(
        model="source", InitialInstanceCount=instances, InstanceType="ml.g5.2xlarge",
        RoutingConfig={"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"})], DataCaptureConfig={
        "EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": CAPTURE,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]})
    sm.create_endpoint(EndpointName="source", EndpointConfigName="source")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="source", WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    workload, rng, failed = ChatSharedPrefix("chat", ""), random.Random(7), [0]
    bodies = []
    for _ in range(requests):  # each request from one of many users, on one of the assistants
        system = workload.systems[rng.randrange(len(workload.systems))]
        question = " ".join(f"q{rng.getrandbits(32):x}" for _ in range(lognormal_tokens(rng, 40, 0.5, 400)))
        bodies.append(json.dumps({"messages": [{"role": "system", "content": system}, {"role": "user", "content": question}],
                                  "max_tokens": lognormal_tokens(rng, 60, 0.5, 1024)}).encode())
    lock = threading.Lock()

    def send(body: bytes) -> None:
        try:
            rt.invoke_endpoint(EndpointName="source", Body=body, ContentType="application/json")["Body"].read()
        except Exception:
            with lock:
                failed[0] += 1

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=64) as pool:
        for n, body in enumerate(bodies):  # open loop: each at its time, whatever the others do
            time.sleep(max(0.0, start + n * seconds / requests - time.monotonic()))
            pool.submit(send, body)
    sm.delete_endpoint(EndpointName="source")  # writes the capture files
    sm.get_waiter("endpoint_deleted").wait(EndpointName="source", WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    return failed[0]


def _replay(emu: EmulatorProcess, strategy: str, instances: int, environment: dict) -> dict:
    sm, s3 = emu.client(), client(emu.url, "s3")
    name = f"replay-{SHORT[strategy].lower()}"
    routing: dict = {"RoutingStrategy": strategy}
    if strategy == "PREFIX_AWARE":
        routing["PrefixAwareRoutingConfig"] = {"PrefixLength": 4096, "ConcurrencyThreshold": 4}
    deploy(sm, name, container={"Image": "sagemaker-emu/llm-sim"}, environment=environment,
           InstanceType="ml.g5.2xlarge", InitialInstanceCount=instances, RoutingConfig=routing)
    spec = {"benchmark": {"type": "aiperf"}, "parameters": {
        "custom_dataset_type": "sagemaker_data_capture", "input_file": "/opt/ml/input/data/captured/",
        "fixed_schedule": True}}
    sm.create_ai_workload_config(AIWorkloadConfigName=name, AIWorkloadConfigs={"WorkloadSpec": {"Inline": json.dumps(spec)}},
                                 DatasetConfig={"InputDataConfig": [{"ChannelName": "captured", "DataSource": {
                                     "S3DataSource": {"S3Uri": f"{CAPTURE}/source/"}}}]})
    sm.create_ai_benchmark_job(AIBenchmarkJobName=name, BenchmarkTarget={"Endpoint": {"Identifier": name}},
                               OutputConfig={"S3OutputLocation": "s3://replay/results"}, RoleArn=ROLE,
                               AIWorkloadConfigIdentifier=name)
    while (job := sm.describe_ai_benchmark_job(AIBenchmarkJobName=name))["AIBenchmarkJobStatus"] in ("InProgress",
                                                                                                    "Stopping"):
        time.sleep(0.5)
    if job["AIBenchmarkJobStatus"] != "Completed":
        raise RuntimeError(f"the {strategy} replay ended {job['AIBenchmarkJobStatus']}: {job.get('FailureReason')}")
    archive = s3.get_object(Bucket="replay", Key=f"results/{name}/output.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        member = tar.extractfile("profile_export_aiperf.json")
        assert member is not None
        profile = json.load(member)
    sm.delete_endpoint(EndpointName=name)
    return profile


def _stat(profile: dict, metric: str, stat: str) -> float:
    return float((profile.get(metric) or {}).get(stat) or 0.0)


def run(requests: int, seconds: float, instances: int, time_scale: float, seed: int, plot: str | None,
        out=print) -> list[list[str]]:
    command = aiperf()
    if command is None:
        out("sagemaker-emu bench replay runs NVIDIA AIPerf: `make install-aiperf` (or pip install "
            "'sagemaker-emu[aiperf]' and set SAGEMAKER_EMU_AIPERF), then run it again.", file=sys.stderr)
        return []
    environment = {"LLM_SIM_TIME_SCALE": str(time_scale)}
    emu = EmulatorProcess(seed=seed, log=subprocess.DEVNULL, env={"SAGEMAKER_EMU_AIPERF": command})
    profiles = {}
    try:
        client(emu.url, "s3").create_bucket(Bucket="replay")
        out(f"  capturing {requests} requests over {seconds:g} s", file=sys.stderr)
        failed = _capture(emu, requests, seconds, instances, environment)
        for strategy in STRATEGIES:
            out(f"  replaying through {strategy}", file=sys.stderr)
            profiles[strategy] = _replay(emu, strategy, instances, environment)
    finally:
        emu.stop()
    base = profiles["RANDOM"]
    rows = []
    for strategy, p in profiles.items():
        ttft50, ttft99 = _stat(p, "time_to_first_token", "p50"), _stat(p, "time_to_first_token", "p99")
        lat50, lat99 = _stat(p, "request_latency", "p50"), _stat(p, "request_latency", "p99")
        rows.append([SHORT[strategy], f"{_stat(p, 'request_count', 'avg'):.0f}",
                     f"{ttft50:.0f}", f"{ttft99:.0f}", f"{lat50:.0f}", f"{lat99:.0f}",
                     f"{_stat(p, 'request_throughput', 'avg'):.2f}",
                     f"{ttft99 / max(_stat(base, 'time_to_first_token', 'p99'), 1e-9):.2f}",
                     f"{lat99 / max(_stat(base, 'request_latency', 'p99'), 1e-9):.2f}"])
    out(f"{requests} captured chat requests over {seconds:g} s (8 shared system prompts of 1500 tokens; "
        f"{failed} failed while captured), replayed by AIPerf through {instances} llm-sim instances per strategy, "
        f"time scale {time_scale:g}")
    out(table(["strategy", "requests", "TTFT p50 ms", "TTFT p99 ms", "latency p50 ms", "latency p99 ms",
               "requests/s", "TTFT p99 / RANDOM", "latency p99 / RANDOM"], rows))
    if plot:
        _plot(rows, plot, out)
    return rows


def _plot(rows: list[list[str]], path: str, out) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        out("no plot: matplotlib is not installed (pip install -e '.[bench]')", file=sys.stderr)
        return
    names = [r[0] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    for offset, (column, label) in enumerate(((2, "TTFT p50"), (3, "TTFT p99"), (5, "latency p99"))):
        ax.bar([i + offset * 0.27 for i in range(len(rows))], [float(r[column]) for r in rows], width=0.27, label=label)
    ax.set_xticks([i + 0.27 for i in range(len(rows))], names)
    ax.set_ylabel("ms")
    ax.set_title("Captured traffic replayed by AIPerf, per strategy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    out(f"plot: {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagemaker-emu bench replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=240, help="requests captured (default: 240)")
    parser.add_argument("--seconds", type=float, default=24.0, help="over how long (default: 24)")
    parser.add_argument("--instances", type=int, default=4, help="llm-sim instances per endpoint (default: 4)")
    parser.add_argument("--time-scale", type=float, default=0.2,
                        help="llm-sim's LLM_SIM_TIME_SCALE: its latencies times this (default: 0.2)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--plot", default=None, metavar="FILE", help="draw the table as a PNG (needs matplotlib)")
    args = parser.parse_args(argv)
    rows = run(args.requests, args.seconds, args.instances, args.time_scale, args.seed, args.plot)
    return 0 if rows else 1
