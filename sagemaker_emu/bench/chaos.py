"""`sagemaker-emu bench chaos`: invocations under load while workers are killed (SIGKILL) and
hung (SIGSTOP), the endpoint is rescaled and updated, and finally the server itself is killed.

Each call carries a unique id, also as its InferenceId; the model (an inference.py written
by this program) appends `pid id` to a ledger before answering, so the ledger shows which
instance ran which call and whether any call ran twice, and the server's log line for each
failed call names the instance (and pid) it was sent to. The report: sent, succeeded, failed by code (and whether
each failure was in flight on a killed or hung instance), hung callers, replayed calls,
in-flight counters once the load stops, and worker processes left after the server died.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import re
import signal
import tarfile
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

from sagemaker_emu.testing import EmulatorProcess

MODEL = '''\
import os, time

def model_fn(model_dir):
    return None

def input_fn(body, content_type):
    return body.decode()

def predict_fn(call_id, model):
    fd = os.open(os.environ["LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{os.getpid()} {call_id}\\n".encode())
    os.close(fd)
    time.sleep(0.01 + (hash(call_id) % 50) / 1000)
    return call_id

def output_fn(prediction, accept):
    return prediction, "text/plain"
'''


def _model_archive(directory: Path) -> Path:
    archive = directory / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = MODEL.encode()
        info = tarfile.TarInfo("code/inference.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return archive


class Chaos:
    def __init__(self, seconds: float, callers: int, instances: int, interval: float, seed: int, out=print) -> None:
        self.seconds, self.callers, self.instances, self.interval = seconds, callers, instances, interval
        self.rng = random.Random(seed)
        self.seed = seed
        self.out = out
        self.work = Path(tempfile.mkdtemp(prefix="sagemaker-emu-chaos-"))
        self.ledger = self.work / "ledger"
        self.outcomes: dict[str, str] = {}  # call id -> "ok" or the error code
        self.hung: list[str] = []
        self.victims: set[int] = set()
        self.actions: Counter = Counter()
        self._lock = threading.Lock()

    # -------------------------------------------------------------- setup

    def start(self) -> None:
        self.server_log = self.work / "server.log"
        with open(self.server_log, "wb") as log:
            self.emulator = EmulatorProcess("--health-interval", "0.5", "--health-failures", "2", seed=self.seed,
                                            log=log)
        self.proc, self.url, self.host, self.port = (self.emulator.proc, self.emulator.url, self.emulator.host,
                                                     self.emulator.port)
        self.sm = self.emulator.client()
        self.sm.create_model(ModelName="chaos", PrimaryContainer={
            "Image": "my/framework:1", "ModelDataUrl": _model_archive(self.work).as_uri(),
            "Environment": {"LEDGER": str(self.ledger), "SAGEMAKER_MODEL_SERVER_WORKERS": "8"}})
        for name, strategy in (("chaos-a", "LEAST_OUTSTANDING_REQUESTS"), ("chaos-b", "RANDOM")):
            self.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
                "VariantName": "AllTraffic", "ModelName": "chaos", "InstanceType": "ml.m5.large",
                "InitialInstanceCount": self.instances, "RoutingConfig": {"RoutingStrategy": strategy}}])
        self.sm.create_endpoint(EndpointName="chaos", EndpointConfigName="chaos-a")
        self.sm.get_waiter("endpoint_in_service").wait(EndpointName="chaos", WaiterConfig={"Delay": 1})

    def view(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/_emu/endpoints/chaos", timeout=10) as resp:
            return json.load(resp)

    # -------------------------------------------------------------- load

    def caller(self, number: int, until: float) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=20)
        n = 0
        while time.monotonic() < until:
            call_id = f"c{number}-{n}"
            n += 1
            try:
                conn.request("POST", "/endpoints/chaos/invocations", call_id.encode(),
                             {"Content-Type": "text/plain", "X-Amzn-SageMaker-Inference-Id": call_id})
                resp = conn.getresponse()
                body = resp.read()
                outcome = "ok" if resp.status == 200 and body.decode() == call_id else \
                    resp.getheader("x-amzn-ErrorType") or f"HTTP {resp.status}"
            except TimeoutError:
                outcome = "hung"
                with self._lock:
                    self.hung.append(call_id)
                conn.close()
            except (OSError, http.client.HTTPException) as exc:
                outcome = type(exc).__name__
                conn.close()
            with self._lock:
                self.outcomes[call_id] = outcome

    # -------------------------------------------------------------- chaos

    def act(self) -> None:
        view = self.view()
        healthy = [i for v in view["variants"] for i in v["instances"] if i["health"] == "Healthy" and i["pid"]]
        choices = ["kill", "stop"] + (["scale", "update"] if view["status"] == "InService" else [])
        action = self.rng.choice(choices)
        if action in ("kill", "stop") and len(healthy) > 1:
            victim = self.rng.choice(healthy)["pid"]
            self.victims.add(victim)
            os.kill(victim, signal.SIGKILL if action == "kill" else signal.SIGSTOP)
        elif action == "scale":
            count = self.rng.choice([self.instances - 1, self.instances, self.instances + 1])
            self.sm.update_endpoint_weights_and_capacities(EndpointName="chaos", DesiredWeightsAndCapacities=[
                {"VariantName": "AllTraffic", "DesiredInstanceCount": max(1, count),
                 "DesiredWeight": self.rng.choice([0.5, 1.0, 2.0])}])
        elif action == "update":
            current = self.sm.describe_endpoint(EndpointName="chaos")["EndpointConfigName"]
            self.sm.update_endpoint(EndpointName="chaos", EndpointConfigName="chaos-b" if current == "chaos-a" else "chaos-a")
        else:
            return
        self.actions[action] += 1

    def run(self) -> int:
        self.start()
        until = time.monotonic() + self.seconds
        threads = [threading.Thread(target=self.caller, args=(n, until), daemon=True) for n in range(self.callers)]
        for t in threads:
            t.start()
        next_act = time.monotonic() + self.interval
        while time.monotonic() < until:
            time.sleep(max(0.0, min(next_act, until) - time.monotonic()))
            if time.monotonic() < until:
                self.act()
                next_act += self.interval
        for t in threads:
            t.join()
        self.sm.get_waiter("endpoint_in_service").wait(EndpointName="chaos", WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        in_flight = sum(i["in_flight"] for v in self.view()["variants"] for i in v["instances"])
        orphans = self.kill_server()
        return self.report(in_flight, orphans)

    def kill_server(self) -> list[int]:
        """SIGKILL the server; return the worker pids still alive 10 s later."""
        workers = _workers_of(self.proc.pid)
        self.proc.kill()
        self.proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.1)
        return [p for p in workers if _alive(p)]

    # -------------------------------------------------------------- report

    def report(self, in_flight: int, orphans: list[int]) -> int:
        ran: dict[str, list[int]] = {}
        for line in self.ledger.read_text().splitlines() if self.ledger.exists() else []:
            pid, call_id = line.split(" ", 1)
            ran.setdefault(call_id, []).append(int(pid))
        replayed = sorted(c for c, pids in ran.items() if len(pids) > 1)
        failed = {c: o for c, o in self.outcomes.items() if o != "ok"}
        sent_to = {m.group(2): int(m.group(1)) for m in _FAILURE_LINE.finditer(self.server_log.read_text())}
        on_victims = {c for c in failed if sent_to.get(c) in self.victims}
        unattributed = {c for c in failed if c not in sent_to}
        elsewhere = set(failed) - on_victims - unattributed
        reached = sum(1 for c in on_victims if c in ran)
        by_code = Counter(failed.values())
        out = self.out
        out(f"chaos: {self.seconds:g} s, {self.callers} callers, {self.instances} instances, an action every "
            f"{self.interval:g} s, seed {self.seed}")
        out("actions: " + ", ".join(f"{k} {v}" for k, v in sorted(self.actions.items())) +
            f"; instances killed or hung: {len(self.victims)}")
        out("")
        out("| sent | succeeded | failed | hung | replayed | in flight after | orphans after server SIGKILL |")
        out("|---|---|---|---|---|---|---|")
        out(f"| {len(self.outcomes)} | {len(self.outcomes) - len(failed)} | {len(failed)} | {len(self.hung)} | "
            f"{len(replayed)} | {in_flight} | {len(orphans)} |")
        out("")
        out("failed by code: " + (", ".join(f"{k} {v}" for k, v in by_code.most_common()) or "none"))
        out(f"failed calls sent to an instance that was killed or hung: {len(on_victims)} ({reached} of them had "
            f"reached its model, the rest were still waiting in it); sent anywhere else: {len(elsewhere)}; "
            f"not in the server log: {len(unattributed)}")
        ok = not replayed and not orphans and not self.hung and not elsewhere and not unattributed and in_flight == 0
        out("verdict: " + ("only calls in flight on killed or hung instances failed; "
                           "none replayed; no orphans" if ok else "FAILED: see the counts above"))
        return 0 if ok else 1


# The server's log line for a failed call: `InvokeEndpoint chaos 424 ModelError instance=<id> pid=<pid> inference_id=<call>`
_FAILURE_LINE = re.compile(r"InvokeEndpoint chaos \d{3} \S+ instance=\S+ pid=(\d+) inference_id=(\S+)")


def _workers_of(server_pid: int) -> list[int]:
    """Every process that carries the server's pid as its parent marker (workers, their children)."""
    found = []
    marker = f"SAGEMAKER_EMU_PARENT_PID={server_pid}".encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if marker in f.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagemaker-emu bench chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the load runs (default: 60)")
    parser.add_argument("--callers", type=int, default=16, help="concurrent callers (default: 16)")
    parser.add_argument("--instances", type=int, default=4, help="instances of the endpoint (default: 4)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between chaos actions (default: 2)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    return Chaos(args.seconds, args.callers, args.instances, args.interval, args.seed).run()
