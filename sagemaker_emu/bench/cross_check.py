"""`sagemaker-emu bench cross-check`: one workload measured by two clients in one run, `bench
routing`'s own and NVIDIA AIPerf's (an AI benchmark job, as SageMaker runs it), so that the
project's routing numbers are confirmed by a tool nobody here wrote.

The workload: open-loop Poisson arrivals of `--rate` a second for both clients (AIPerf's
`request_rate_mode: poisson`; ours sends `bench routing`'s request at the same kind of
arrivals), or with `--rate 0` `--users` closed-loop users (AIPerf's `concurrency`; each client's
own cost per request then shows in the other's numbers), for `--seconds` after
`--warmup` seconds, each request `--input-tokens` prompt tokens of distinct words and a streamed
answer of ~N(`--output-tokens`, `--output-stddev`) tokens, against an llm-sim endpoint of `--instances` instances
under LEAST_OUTSTANDING_REQUESTS (a fresh endpoint for each client). AIPerf counts tokens with
llm-sim's tokenizer, so both send the same sizes. Printed: each client's requests, TTFT p50 and
p99, request latency p50, throughput, and AIPerf's over bench routing's.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import random
import sys
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sagemaker_emu.bench import routing
from sagemaker_emu.bench.replay import ROLE, aiperf
from sagemaker_emu.bench.stats import percentile, table
from sagemaker_emu.bench.workloads import Workload, words
from sagemaker_emu.testing import client, deploy

PROFILE = "default"  # llm-sim's: continuous batching of 8
ENTRIES = 5000  # distinct AIPerf prompts: more than any run here sends


class Sized(Workload):
    """Prompts of distinct words; output lengths drawn as AIPerf draws them (a normal
    distribution, rounded, at least one)."""

    def __init__(self, input_tokens: int, output_tokens: int, output_stddev: float) -> None:
        super().__init__("sized", f"{input_tokens} input, ~N({output_tokens}, {output_stddev:g}) output tokens")
        self.input_tokens, self.output_tokens, self.output_stddev = input_tokens, output_tokens, output_stddev

    def request(self, rng: random.Random, user: int) -> tuple[bytes, int]:
        n_out = max(1, round(rng.gauss(self.output_tokens, self.output_stddev)))
        return json.dumps({"inputs": words(rng, self.input_tokens), "parameters": {"max_new_tokens": n_out}}).encode(), n_out


def _aiperf_job(emu: routing.Emulator, args: argparse.Namespace) -> dict:
    sm = emu.sm
    client(emu.url, "s3").create_bucket(Bucket="cross-check")
    deploy(sm, "aiperf-check", container={"Image": "sagemaker-emu/llm-sim"},
           environment={"LLM_SIM_PROFILE": PROFILE, "LLM_SIM_TIME_SCALE": str(args.time_scale)},
           InstanceType="ml.g5.2xlarge", InitialInstanceCount=args.instances,
           RoutingConfig={"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"})
    load = ({"request_rate": args.rate, "request_rate_mode": "poisson", "warmup_request_rate": args.rate}
            if args.rate else {"concurrency": args.users, "warmup_concurrency": args.users})
    spec = {"benchmark": {"type": "aiperf"}, "parameters": {
        **load, "benchmark_duration": args.seconds, "warmup_duration": args.warmup,
        "prompt_input_tokens_mean": args.input_tokens,
        "prompt_input_tokens_stddev": 0, "output_tokens_mean": args.output_tokens,
        "output_tokens_stddev": args.output_stddev,
        "streaming": True, "random_seed": args.seed,
        # one prompt per request, as ours: AIPerf's default of 100 prompts, reused, would let
        # llm-sim's prefix cache skip the prefill of every repeat
        "num_dataset_entries": ENTRIES}}
    sm.create_ai_workload_config(AIWorkloadConfigName="fixed", AIWorkloadConfigs={"WorkloadSpec": {
        "Inline": json.dumps(spec)}})
    sm.create_ai_benchmark_job(AIBenchmarkJobName="fixed", BenchmarkTarget={"Endpoint": {"Identifier": "aiperf-check"}},
                               OutputConfig={"S3OutputLocation": "s3://cross-check/out"}, RoleArn=ROLE,
                               AIWorkloadConfigIdentifier="fixed")
    while (job := sm.describe_ai_benchmark_job(AIBenchmarkJobName="fixed"))["AIBenchmarkJobStatus"] == "InProgress":
        time.sleep(0.5)
    if job["AIBenchmarkJobStatus"] != "Completed":
        raise RuntimeError(f"the AIPerf job ended {job['AIBenchmarkJobStatus']}: {job.get('FailureReason')}")
    archive = client(emu.url, "s3").get_object(Bucket="cross-check", Key="out/fixed/output.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        member = tar.extractfile("profile_export_aiperf.json")
        assert member is not None
        return json.load(member)


def _open_loop(emu: routing.Emulator, args: argparse.Namespace) -> list[float]:
    """`bench routing`'s request (routing._call) sent at Poisson arrivals of `--rate` a second:
    [requests, TTFT p50 ms, TTFT p99 ms, latency p50 ms, requests/s] of those started after the
    warm-up."""
    emu.deploy("open-loop", args.instances, "LEAST_OUTSTANDING_REQUESTS",
               {"LLM_SIM_PROFILE": PROFILE, "LLM_SIM_TIME_SCALE": str(args.time_scale)})
    workload, rng = Sized(args.input_tokens, args.output_tokens, args.output_stddev), random.Random(args.seed)
    arrivals, at = [], 0.0
    while at < args.warmup + args.seconds:
        at += rng.expovariate(args.rate)
        arrivals.append((at, workload.request(rng, 0)[0]))
    samples: list[tuple[float, float, float]] = []  # (sent at, TTFT, latency), seconds
    lock, local = threading.Lock(), threading.local()

    def send(at: float, body: bytes) -> None:
        request = json.loads(body)
        request["stream"] = True
        conn = getattr(local, "conn", None) or http.client.HTTPConnection(emu.host, emu.port, timeout=600)
        local.conn = conn
        t0 = time.perf_counter()
        try:
            ttft, _ = routing._call(conn, "/endpoints/open-loop/invocations-response-stream",
                                    json.dumps(request).encode(), t0)
        except (OSError, RuntimeError, http.client.HTTPException):
            local.conn = None
            return
        with lock:
            samples.append((at, ttft or 0.0, time.perf_counter() - t0))

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=128) as pool:
        for at, body in arrivals:  # each at its time, whatever the others are doing
            time.sleep(max(0.0, start + at - time.perf_counter()))
            pool.submit(send, at, body)
    emu.remove("open-loop")
    measured = [s for s in samples if s[0] >= args.warmup]
    ttfts, latencies = sorted(s[1] for s in measured), sorted(s[2] for s in measured)
    return [len(measured), percentile(ttfts, 50) * 1000, percentile(ttfts, 99) * 1000,
            percentile(latencies, 50) * 1000, len(measured) / args.seconds]


def run(args: argparse.Namespace, out=print) -> list[list[str]]:
    command = aiperf()
    if command is None:
        out("sagemaker-emu bench cross-check runs NVIDIA AIPerf: `make install-aiperf` (or pip install "
            "'sagemaker-emu[aiperf]' and set SAGEMAKER_EMU_AIPERF), then run it again.", file=sys.stderr)
        return []
    emu = routing.Emulator(args.seed, env={"SAGEMAKER_EMU_AIPERF": command})
    try:
        out("  bench routing's client", file=sys.stderr)
        if args.rate:
            ours_row = _open_loop(emu, args)
        else:
            ours = routing.run_point(emu, Sized(args.input_tokens, args.output_tokens, args.output_stddev), PROFILE,
                                     args.users, args.instances, "LEAST_OUTSTANDING_REQUESTS", args.seconds,
                                     args.warmup, args.time_scale, args.seed, stream=True, think_s=0.0)
            ours_row = [ours.requests, (ours.ttft_p50_s or 0) * 1000, (ours.ttft_p99_s or 0) * 1000,
                        ours.p50_s * 1000, ours.per_minute / 60]
        out("  AIPerf, as an AI benchmark job", file=sys.stderr)
        theirs = _aiperf_job(emu, args)
    finally:
        emu.stop()
    aiperf_row = [theirs["request_count"]["avg"], theirs["time_to_first_token"]["p50"],
                  theirs["time_to_first_token"]["p99"], theirs["request_latency"]["p50"],
                  theirs["request_throughput"]["avg"]]
    rows = [["bench routing", *(f"{v:.0f}" if i == 0 else f"{v:.1f}" for i, v in enumerate(ours_row))],
            ["AIPerf (benchmark job)", *(f"{v:.0f}" if i == 0 else f"{v:.1f}" for i, v in enumerate(aiperf_row))],
            ["AIPerf / bench routing", "", *(f"{a / b:.3f}" if b else "-" for a, b in zip(aiperf_row[1:], ours_row[1:]))]]
    load = f"Poisson arrivals at {args.rate:g} a second" if args.rate else f"{args.users} closed-loop users"
    out(f"{load}, {args.seconds:g} s after {args.warmup:g} s of warm-up, {args.input_tokens} input and "
        f"~N({args.output_tokens}, {args.output_stddev:g}) output tokens a request, {args.instances} llm-sim instances under "
        f"LEAST_OUTSTANDING_REQUESTS, time scale {args.time_scale:g}")
    out(table(["client", "requests", "TTFT p50 ms", "TTFT p99 ms", "latency p50 ms", "requests/s"], rows))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagemaker-emu bench cross-check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20.0,
                        help="open-loop Poisson arrivals a second, for both clients (AIPerf's request_rate with "
                             "request_rate_mode poisson; default: 20); 0: closed-loop --users instead")
    parser.add_argument("--users", type=int, default=8, help="with --rate 0: closed-loop users (AIPerf's concurrency; "
                                                              "default: 8)")
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds (default: 30)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring (default: 5)")
    parser.add_argument("--input-tokens", type=int, default=200)
    parser.add_argument("--output-tokens", type=int, default=32, help="mean output tokens (default: 32)")
    parser.add_argument("--output-stddev", type=float, default=10.0,
                        help="their standard deviation (default: 10): identical requests on a deterministic model "
                             "keep closed-loop users in step, which one client's timing breaks and another's may not")
    parser.add_argument("--time-scale", type=float, default=0.2, help="llm-sim's LLM_SIM_TIME_SCALE (default: 0.2)")
    parser.add_argument("--seed", type=int, default=1)
    return 0 if run(parser.parse_args(argv)) else 1
