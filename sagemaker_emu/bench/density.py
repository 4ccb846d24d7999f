"""`sagemaker-emu bench density`: how much memory each worker costs and how fast a large fleet
starts, for each way a worker can start, side by side in one run.

For `--worker-start fork` (workers forked from the pre-imported template, fleet/spawn.py) and
`exec` (a new Python per worker), a fresh emulator creates one endpoint of `--instances`
llm-sim instances. Printed per way:
- seconds from CreateEndpoint to InService (DescribeEndpoint, through boto3's waiter);
- each worker's PSS (proportional set size, /proc/<pid>/smaps_rollup: shared pages divided
  among the processes sharing them), median and mean, when InService and again after every
  instance has served `--calls` calls (pages a worker writes stop being shared);
- the template's own PSS, and the fleet's total with it;
then the fork/exec ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from sagemaker_emu.bench.stats import table
from sagemaker_emu.testing import EmulatorProcess

WAYS = ("fork", "exec")
BODY = json.dumps({"inputs": "How many workers fit on one machine?", "parameters": {"max_new_tokens": 4}}).encode()
FAST = {"LLM_SIM_PREFILL_BASE_MS": "1", "LLM_SIM_PREFILL_MS_PER_TOKEN": "0", "LLM_SIM_DECODE_MS_PER_TOKEN": "1"}


def pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise LookupError(f"no Pss in /proc/{pid}/smaps_rollup")


def template_pid(emulator_pid: int) -> int | None:
    """The emulator's child running the worker template, if it has one."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == emulator_pid and b"worker.template" in (stat.parent / "cmdline").read_bytes():
                return int(stat.parent.name)
        except OSError:  # noqa: PERF203 - a process that ended while we looked
            continue
    return None


def _load(rt, calls: int, threads: int = 8) -> None:
    left = iter(range(calls))
    lock = threading.Lock()

    def caller() -> None:
        while True:
            with lock:
                if next(left, None) is None:
                    return
            rt.invoke_endpoint(EndpointName="dense", ContentType="application/json", Body=BODY)

    workers = [threading.Thread(target=caller) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def _mb(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def measure(way: str, instances: int, calls: int) -> dict[str, float]:
    emulator = EmulatorProcess("--worker-start", way, "--quota", f"total={instances}", log=subprocess.DEVNULL)
    try:
        sm, rt = emulator.client(), emulator.client("sagemaker-runtime")
        sm.create_model(ModelName="m", PrimaryContainer={"Image": "sagemaker-emu/llm-sim", "Environment": FAST})
        sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large",
            "InitialInstanceCount": instances, "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}}])
        started = time.perf_counter()
        sm.create_endpoint(EndpointName="dense", EndpointConfigName="c")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="dense", WaiterConfig={"Delay": 1, "MaxAttempts": 600})
        in_service_s = time.perf_counter() - started
        status = sm.describe_endpoint(EndpointName="dense")["EndpointStatus"]
        if status != "InService":
            raise RuntimeError(f"the endpoint is {status}")
        pids = [i["pid"] for v in emulator.endpoint_view("dense")["variants"] for i in v["instances"]]
        template = template_pid(emulator.proc.pid)
        idle = [pss_kib(p) for p in pids]
        _load(rt, calls * instances)
        served = [pss_kib(p) for p in pids]
        own = pss_kib(template) if template is not None else 0
        return {"in_service_s": in_service_s, "idle_median": statistics.median(idle), "idle_mean": statistics.mean(idle),
                "served_median": statistics.median(served), "served_mean": statistics.mean(served),
                "template": own, "total": sum(served) + own, "workers": len(pids)}
    finally:
        emulator.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagemaker-emu bench density", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--calls", type=int, default=2, help="calls per instance before the second reading (default: 2)")
    parser.add_argument("--ways", default=",".join(WAYS), help="fork, exec or both (default: fork,exec)")
    args = parser.parse_args(argv)
    results = {}
    for way in args.ways.split(","):
        print(f"  {way}: {args.instances} llm-sim instances", file=sys.stderr)
        results[way] = measure(way, args.instances, args.calls)
    rows = [[way, int(r["workers"]), f"{r['in_service_s']:.1f}", _mb(r["idle_median"]), _mb(r["idle_mean"]),
             _mb(r["served_median"]), _mb(r["served_mean"]), _mb(r["template"]), _mb(r["total"])]
            for way, r in results.items()]
    print(table(["start", "workers", "to InService s", "PSS idle median MB", "PSS idle mean MB",
                 f"PSS after {args.calls} calls median MB", "mean MB", "template MB", "total MB"], rows))
    if set(WAYS) <= results.keys():
        fork, spawned = results["fork"], results["exec"]
        print(f"fork / exec: time to InService {fork['in_service_s'] / spawned['in_service_s']:.2f}, "
              f"PSS per worker after calls {fork['served_mean'] / spawned['served_mean']:.2f}, "
              f"total {fork['total'] / spawned['total']:.2f}")
    return 0
