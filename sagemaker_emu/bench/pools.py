"""`sagemaker-emu bench pools`: calls under load while a heterogeneous fleet changes shape, in
the manner of `bench chaos`: every call counted, every failure by its code.

Two rows, one server (`--clock-speed 60`, so a five-minute consolidation cooldown is five seconds):

- **pool fallback**: an endpoint of InstancePools ml.g6e.2xlarge (priority 1) and ml.g5.2xlarge
  (priority 2) whose first type has capacity for two instances. Under load it scales out one
  instance at a time to six (four fall back to the second pool), the first type is made short
  (`/_emu/capacity`) and it scales out to eight, then back in to three, one at a time (the
  fallback pool's instances leave first).
- **consolidation**: an inference-component endpoint under managed instance scaling with
  ScaleInPolicy CONSOLIDATION; its component drops from eight copies to three, spread over four
  instances, and consolidation moves them onto one while they take calls.

The verdict is the issue's bar: no failed call in either row.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import threading
import time
from collections import Counter
from typing import Callable

from sagemaker_emu.bench.stats import table
from sagemaker_emu.testing import EmulatorProcess

ROLE = "arn:aws:iam::123456789012:role/bench"
FIRST, FALLBACK = "ml.g6e.2xlarge", "ml.g5.2xlarge"
IC_HEADER = "X-Amzn-SageMaker-Inference-Component"


class Load:
    """Callers invoking one endpoint (or component) until stopped; outcomes counted by code."""

    def __init__(self, server: EmulatorProcess, endpoint: str, callers: int, component: str | None = None) -> None:
        self.server, self.endpoint, self.component = server, endpoint, component
        self.outcomes: Counter[str] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._call, daemon=True) for _ in range(callers)]

    def __enter__(self) -> "Load":
        self.started = time.monotonic()
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()
        self.seconds = time.monotonic() - self.started

    def _call(self) -> None:
        conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=60)
        headers = {"Content-Type": "application/json", **({IC_HEADER: self.component} if self.component else {})}
        body = json.dumps({"inputs": "a short prompt", "parameters": {"max_new_tokens": 8}}).encode()
        while not self._stop.is_set():
            try:
                conn.request("POST", f"/endpoints/{self.endpoint}/invocations", body, headers)
                resp = conn.getresponse()
                resp.read()
                outcome = "ok" if resp.status == 200 else resp.getheader("x-amzn-ErrorType") or f"HTTP {resp.status}"
            except (OSError, http.client.HTTPException) as exc:
                outcome = type(exc).__name__
                conn.close()
            with self._lock:
                self.outcomes[outcome] += 1


def _wait(predicate: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the fleet did not reach the expected shape")
        time.sleep(0.2)


class PoolsBench:
    def __init__(self, callers: int, seed: int) -> None:
        self.callers = callers
        self.server = EmulatorProcess("--clock-speed", "60", seed=seed, log=subprocess.DEVNULL)
        self.sm = self.server.client()
        self.sm.create_model(ModelName="llm", ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": "sagemaker-emu/llm-sim", "Environment": {"LLM_SIM_TIME_SCALE": "0.1"}})

    def pools(self, name: str) -> str:
        variant = self.sm.describe_endpoint(EndpointName=name)["ProductionVariants"][0]
        return ", ".join(f"{p['InstanceType']} {p['CurrentInstanceCount']}" for p in variant["InstancePools"])

    def scale(self, name: str, count: int) -> None:
        self.sm.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
            {"VariantName": "AllTraffic", "DesiredInstanceCount": count}])
        self.sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})

    def fallback(self) -> list:
        self.server.capacity(FIRST, 2)
        self.sm.create_endpoint_config(EndpointConfigName="fallback", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "llm", "InitialInstanceCount": 2,
            "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
            "InstancePools": [{"InstanceType": FIRST, "Priority": 1}, {"InstanceType": FALLBACK, "Priority": 2}]}])
        self.sm.create_endpoint(EndpointName="fallback", EndpointConfigName="fallback")
        self.sm.get_waiter("endpoint_in_service").wait(EndpointName="fallback", WaiterConfig={"Delay": 1})
        shapes = [self.pools("fallback")]
        with Load(self.server, "fallback", self.callers) as load:
            for count in range(3, 7):  # one instance at a time: each a scale-out under load
                self.scale("fallback", count)
            shapes.append(self.pools("fallback"))
            self.server.capacity(FIRST, 0)  # the preferred type runs out: the next instances fall back
            for count in (7, 8):
                self.scale("fallback", count)
            shapes.append(self.pools("fallback"))
            for count in range(7, 2, -1):
                self.scale("fallback", count)
            shapes.append(self.pools("fallback"))
        failure = self.sm.describe_endpoint(EndpointName="fallback").get("FailureReason")
        return ["pool fallback", *self._counts(load), " -> ".join(shapes), failure or "-"]

    def consolidation(self) -> list:
        self.sm.create_endpoint_config(EndpointConfigName="packs", ExecutionRoleArn=ROLE, ProductionVariants=[{
            "VariantName": "AllTraffic", "InstanceType": "ml.g5.12xlarge", "InitialInstanceCount": 4,
            "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
            "ManagedInstanceScaling": {"Status": "ENABLED", "MinInstanceCount": 1, "MaxInstanceCount": 4,
                                       "ScaleInPolicy": {"Strategy": "CONSOLIDATION", "MaximumStepSize": 1,
                                                         "CooldownInMinutes": 5}}}])
        self.sm.create_endpoint(EndpointName="packs", EndpointConfigName="packs")
        self.sm.get_waiter("endpoint_in_service").wait(EndpointName="packs", WaiterConfig={"Delay": 1})
        self.sm.create_inference_component(
            InferenceComponentName="packs-ic", EndpointName="packs", VariantName="AllTraffic",
            Specification={"ModelName": "llm", "ComputeResourceRequirements": {
                "NumberOfAcceleratorDevicesRequired": 1, "MinMemoryRequiredInMb": 1024}},
            RuntimeConfig={"CopyCount": 8})

        def component(status: str = "InService") -> bool:
            return self.sm.describe_inference_component(InferenceComponentName="packs-ic")[
                "InferenceComponentStatus"] == status

        def hosts() -> list[int]:
            return [len(h["copies"]) for h in self.server.endpoint_view("packs")["variants"][0]["hosts"]]

        _wait(component)
        shapes = ["copies per instance " + "/".join(map(str, hosts()))]
        with Load(self.server, "packs", self.callers, "packs-ic") as load:
            self.sm.update_inference_component_runtime_config(InferenceComponentName="packs-ic",
                                                              DesiredRuntimeConfig={"CopyCount": 3})
            _wait(component)
            shapes.append("/".join(map(str, hosts())))
            _wait(lambda: len(hosts()) == 1, timeout=180)  # three 5-second cooldowns, a move each
            shapes.append("/".join(map(str, hosts())))
        return ["consolidation", *self._counts(load), " -> ".join(shapes), "-"]

    @staticmethod
    def _counts(load: Load) -> list:
        sent = sum(load.outcomes.values())
        failed = {k: v for k, v in load.outcomes.items() if k != "ok"}
        return [f"{load.seconds:.1f}", sent, load.outcomes["ok"], sum(failed.values()),
                ", ".join(f"{k} {v}" for k, v in sorted(failed.items())) or "-"]

    def run(self) -> int:
        try:
            rows = [self.fallback(), self.consolidation()]
        finally:
            self.server.stop()
        print(f"bench pools: {self.callers} callers per row, llm-sim at time scale 0.1, --clock-speed 60")
        print(table(["row", "seconds", "sent", "succeeded", "failed", "failed by code", "fleet, step by step",
                     "FailureReason"], rows))
        ok = all(row[4] == 0 for row in rows)
        print("verdict: " + ("no failed call while pools fell back, scaled and consolidated" if ok
                             else "FAILED: calls failed, see the table"))
        return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagemaker-emu bench pools", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callers", type=int, default=8, help="concurrent callers per row (default: 8)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    return PoolsBench(args.callers, args.seed).run()
