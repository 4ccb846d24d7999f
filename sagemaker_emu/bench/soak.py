"""`sagemaker-emu bench soak --minutes N`: mixed load for N minutes while the server's resident
memory, threads and open descriptors are sampled.

The load: callers invoking a kept endpoint, a caller making requests that fail (unknown
endpoints, bad input), and a loop that creates, invokes and deletes endpoints one after
another. A server that leaks per request, per error or per endpoint shows a rising column.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import threading
import time

from sagemaker_emu.bench.stats import proc_status
from sagemaker_emu.testing import EmulatorProcess


def _status(pid: int) -> tuple[float, int, int]:
    """(resident MB, threads, open descriptors) of a process, from /proc."""
    status = proc_status(pid)
    return status.get("VmRSS", 0) / 1024, status.get("Threads", 0), len(os.listdir(f"/proc/{pid}/fd"))


class Soak:
    def __init__(self, minutes: float, sample_seconds: float, callers: int, seed: int, out=print) -> None:
        self.seconds, self.sample_seconds, self.callers, self.seed, self.out = \
            minutes * 60, sample_seconds, callers, seed, out
        self.counts = {"invocations": 0, "errors": 0, "cycles": 0}
        self._lock = threading.Lock()

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def _control(self, conn: http.client.HTTPConnection, operation: str, params: dict) -> tuple[int, dict]:
        conn.request("POST", "/", json.dumps(params), {"X-Amz-Target": f"SageMaker.{operation}",
                                                      "Content-Type": "application/x-amz-json-1.1"})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, json.loads(body) if body else {}

    def _deploy(self, conn, name: str) -> None:
        self._control(conn, "CreateModel", {"ModelName": name, "PrimaryContainer": {"Image": "sagemaker-emu/echo"}})
        self._control(conn, "CreateEndpointConfig", {"EndpointConfigName": name, "ProductionVariants": [{
            "VariantName": "v", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}]})
        self._control(conn, "CreateEndpoint", {"EndpointName": name, "EndpointConfigName": name})
        self._wait(conn, name, "InService")

    def _wait(self, conn, name: str, status: str | None) -> None:
        while True:  # the emulator holds a waiter's poll; plain polls here are cheap and bounded
            code, body = self._control(conn, "DescribeEndpoint", {"EndpointName": name})
            if (status is None and code == 400) or body.get("EndpointStatus") == status:
                return
            if body.get("EndpointStatus") == "Failed":
                raise RuntimeError(f"{name} failed: {body.get('FailureReason')}")
            time.sleep(0.05)

    def invoker(self, until: float) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        while time.monotonic() < until:
            conn.request("POST", "/endpoints/soak/invocations", b'{"x": 1}', {"Content-Type": "application/json"})
            conn.getresponse().read()
            self._count("invocations")

    def failer(self, until: float) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        n = 0
        while time.monotonic() < until:
            n += 1
            conn.request("POST", f"/endpoints/nobody-{n}/invocations", b"x")  # a fresh name each time
            conn.getresponse().read()
            self._control(conn, "CreateModel", {"ModelName": "bad name!"})
            self._count("errors")
            time.sleep(0.005)

    def cycler(self, until: float) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        n = 0
        while time.monotonic() < until:
            name = f"cycle-{n % 2}"
            n += 1
            self._deploy(conn, name)
            conn.request("POST", f"/endpoints/{name}/invocations", b"hello")
            conn.getresponse().read()
            self._control(conn, "DeleteEndpoint", {"EndpointName": name})
            self._wait(conn, name, None)
            self._control(conn, "DeleteEndpointConfig", {"EndpointConfigName": name})
            self._control(conn, "DeleteModel", {"ModelName": name})
            self._count("cycles")

    def run(self) -> int:
        emulator = EmulatorProcess(seed=self.seed, log=subprocess.DEVNULL)
        proc, self.host, self.port = emulator.proc, emulator.host, emulator.port
        try:
            self._deploy(http.client.HTTPConnection(self.host, self.port, timeout=60), "soak")
            until = time.monotonic() + self.seconds
            workers = [threading.Thread(target=self.invoker, args=(until,), daemon=True) for _ in range(self.callers)]
            workers += [threading.Thread(target=f, args=(until,), daemon=True) for f in (self.failer, self.cycler)]
            for t in workers:
                t.start()
            started = time.monotonic()
            samples = []
            while True:
                with self._lock:
                    counts = dict(self.counts)
                samples.append((time.monotonic() - started, *_status(proc.pid), counts))
                if time.monotonic() >= until:
                    break
                time.sleep(min(self.sample_seconds, max(0.0, until - time.monotonic())))
            for t in workers:
                t.join(timeout=120)
        finally:
            emulator.stop()
        return self.report(samples)

    def report(self, samples: list) -> int:
        out = self.out
        out(f"soak: {self.seconds / 60:g} min, {self.callers} invoking callers + 1 failing caller + 1 "
            f"create/invoke/delete loop, sampled every {self.sample_seconds:g} s")
        out("")
        out("| t (s) | RSS (MB) | threads | fds | invocations | failed calls | create/delete cycles |")
        out("|---|---|---|---|---|---|---|")
        for t, rss, threads, fds, counts in samples:
            out(f"| {t:.0f} | {rss:.1f} | {threads} | {fds} | {counts['invocations']} | {counts['errors']} | "
                f"{counts['cycles']} |")
        # Warm-up (imports, first allocations, thread pools) ends within the first quarter.
        steady = samples[max(1, len(samples) // 4):]
        first, last = steady[: max(1, len(steady) // 4)], steady[-max(1, len(steady) // 4):]
        out("")
        ok = True
        for column, name, limit in ((1, "RSS", 1.10), (2, "threads", 1.10), (3, "fds", 1.10)):
            a = statistics.mean(s[column] for s in first)
            b = statistics.mean(s[column] for s in last)
            ratio = b / a if a else float("nan")
            ok &= ratio <= limit
            out(f"{name}: {a:.1f} after warm-up, {b:.1f} at the end: {ratio:.2f}x (flat means <= {limit:.2f}x)")
        out("verdict: " + ("flat" if ok else "GROWING"))
        return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagemaker-emu bench soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to run (default: 10)")
    parser.add_argument("--sample-seconds", type=float, default=30.0, help="seconds between samples (default: 30)")
    parser.add_argument("--callers", type=int, default=4, help="callers invoking the kept endpoint (default: 4)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    return Soak(args.minutes, args.sample_seconds, args.callers, args.seed).run()
