"""`sagemaker-emu bench async`: many queued asynchronous requests, drained with bounded memory.

An asynchronous echo endpoint is scaled to zero instances; `--requests` InvokeEndpointAsync
calls with inline bodies of `--kib` KiB are queued (they wait: no instance); then the endpoint
is scaled to `--instances` and the queue drains. Printed for `--requests` and for a tenth of
it, side by side in one run: the emulator's resident memory before queueing, with the queue
full, at its peak while draining, and after; how long the queue took to drain. Bounded memory
means the full-queue line barely moves with ten times the requests (bodies wait on disk).
"""

from __future__ import annotations

import argparse
import subprocess
import time

from sagemaker_emu.bench.stats import proc_status, table
from sagemaker_emu.testing import EmulatorProcess


def _scale(sm, name: str, count: int) -> None:
    sm.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": count}])
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def _one(requests: int, kib: int, instances: int) -> list[str]:
    emulator = EmulatorProcess(log=subprocess.DEVNULL)
    try:
        sm, rt, s3 = emulator.client(), emulator.client("sagemaker-runtime"), emulator.client("s3")
        s3.create_bucket(Bucket="out")
        sm.create_model(ModelName="m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
        sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
            AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "s3://out/results"}})
        sm.create_endpoint(EndpointName="a", EndpointConfigName="c")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="a", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        _scale(sm, "a", 0)
        pid = emulator.proc.pid
        before = proc_status(pid)["VmRSS"]
        body = b"x" * (kib * 1024)
        for _ in range(requests):
            rt.invoke_endpoint_async(EndpointName="a", Body=body)
        queued = proc_status(pid)["VmRSS"]
        started = time.perf_counter()
        _scale(sm, "a", instances)
        while emulator.endpoint_view("a")["async"] != {"queued": 0, "running": 0}:
            time.sleep(0.05)
        drained_s = time.perf_counter() - started
        status = proc_status(pid)
        written = sum(len(page.get("Contents", [])) for page in
                      s3.get_paginator("list_objects_v2").paginate(Bucket="out"))
        return [str(requests), f"{before / 1024:.0f}", f"{queued / 1024:.0f}", f"{status['VmHWM'] / 1024:.0f}",
                f"{status['VmRSS'] / 1024:.0f}", f"{drained_s:.1f}", f"{requests / drained_s:.0f}", str(written)]
    finally:
        emulator.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagemaker-emu bench async", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--kib", type=int, default=100, help="inline body size in KiB (default: 100; at most 125)")
    parser.add_argument("--instances", type=int, default=2)
    args = parser.parse_args(argv)
    rows = [_one(n, args.kib, args.instances) for n in (max(1, args.requests // 10), args.requests)]
    print(f"{args.kib} KiB inline bodies, drained by {args.instances} echo instances")
    print(table(["requests", "RSS before MB", "RSS queued MB", "RSS peak MB", "RSS after MB", "drain s",
                 "requests/s", "outputs in S3"], rows))
    return 0
