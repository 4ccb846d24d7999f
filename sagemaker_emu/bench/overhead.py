"""`sagemaker-emu bench overhead`: what the emulator adds on top of the worker it calls.

The same echo invocations go (a) straight to a worker's `POST /invocations`, (b) through
the emulator's `POST /endpoints/<name>/invocations` with the same raw HTTP client, and
(c) through the emulator with boto3, each with 1 and 16 client threads. Where moto is
installed (`pip install 'moto[server]'`), (d) the same boto3 load against moto_server's
canned InvokeEndpoint runs in the same session, for a side-by-side ratio. Two more pairs: the
same echo endpoint through an inference router (InvokeInferenceRouter) beside (b), and one
llm-sim endpoint's chat body through InvokeEndpoint and through the OpenAI-compatible path.

With `--idle-sockets N` (and `--slow-sockets M`), the emulator path is measured again while
N connections sit open sending nothing and M send one header byte a second (slowloris),
and the ratio to the unloaded run is printed: hostile sockets must not starve callers.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any, Callable

from sagemaker_emu.bench.stats import LoadResult, closed_loop, table
from sagemaker_emu.testing import EmulatorProcess, client, deploy
from sagemaker_emu.fleet.spawn import free_port

BODY = b'{"inputs": [0.1, 0.2, 0.3]}'


def _start_moto() -> tuple[subprocess.Popen, str] | None:
    try:
        import moto.server  # noqa: F401
    except ImportError:
        return None
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    return None


def _boto3(url: str, service: str, threads: int):
    return client(url, service, max_pool_connections=max(10, threads))


def _raw_caller(host: str, port: int, path: str, threads: int, body: bytes = BODY,
                headers: dict[str, str] | None = None) -> Callable[[int], None]:
    """One keep-alive connection per client thread."""
    local = [http.client.HTTPConnection(host, port, timeout=30) for _ in range(threads)]
    sent = {"Content-Type": "application/json", **(headers or {})}

    def call(user: int) -> None:
        conn = local[user]
        conn.request("POST", path, body=body, headers=sent)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(resp.status)

    return call


def _boto3_caller(url: str, threads: int) -> Callable[[int], None]:
    rt = _boto3(url, "sagemaker-runtime", threads)

    def call(user: int) -> None:
        rt.invoke_endpoint(EndpointName="bench", Body=BODY, ContentType="application/json")["Body"].read()

    return call


# The OpenAI-compatible path against InvokeEndpoint on one llm-sim endpoint that takes no time:
# the same chat body to the container's /invocations and, on the OpenAI path, its /v1/chat/completions.
CHAT = json.dumps({"model": "", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 1}).encode()
CHAT_DIRECT = "chat: direct to worker (raw HTTP)"
CHAT_INVOKE = "chat: InvokeEndpoint (raw HTTP)"
CHAT_OPENAI = "chat: OpenAI-compatible path (raw HTTP)"


ROUTER = "through an inference router (raw HTTP)"


def _router(emulator: EmulatorProcess) -> None:
    """An inference router whose one routing target is the bench endpoint."""
    sm = emulator.client()
    arn = sm.describe_endpoint(EndpointName="bench")["EndpointArn"]
    sm.create_inference_router(InferenceRouterName="bench-router", RoutingTargets=[
        {"Name": "echo", "Destinations": [{"ResourceArn": arn}]}])
    while sm.describe_inference_router(InferenceRouterName="bench-router")["Status"] != "InService":
        time.sleep(0.05)


def _deploy_chat(emulator: EmulatorProcess, strategy: str) -> dict:
    zero = {"LLM_SIM_PREFILL_BASE_MS": "0", "LLM_SIM_PREFILL_MS_PER_TOKEN": "0", "LLM_SIM_DECODE_MS_PER_TOKEN": "0"}
    deploy(emulator.client(), "bench-chat", RoutingConfig={"RoutingStrategy": "RANDOM" if strategy == "PREFIX_AWARE"
                                                           else strategy},
           container={"Image": "sagemaker-emu/llm-sim", "Environment": zero})
    return emulator.endpoint_view("bench-chat")["variants"][0]["instances"][0]


def _deploy(emulator: EmulatorProcess, strategy: str) -> dict:
    """One echo instance behind `strategy`; returns its /_emu view (the worker's port)."""
    routing: dict[str, Any] = {"RoutingStrategy": strategy}
    if strategy == "PREFIX_AWARE":
        routing["PrefixAwareRoutingConfig"] = {"PrefixLength": 1024, "ConcurrencyThreshold": 64}
    deploy(emulator.client(), "bench", RoutingConfig=routing)
    return emulator.endpoint_view("bench")["variants"][0]["instances"][0]


class _HostileSockets:
    """`idle` open connections that never send, and `slow` ones that dribble a request head."""

    def __init__(self, host: str, port: int, idle: int, slow: int) -> None:
        self.idle = [socket.create_connection((host, port)) for _ in range(idle)]
        self.slow = [socket.create_connection((host, port)) for _ in range(slow)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._dribble, daemon=True)
        self._thread.start()

    def _dribble(self) -> None:
        head = b"POST /endpoints/bench/invocations HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 10_000
        sent = 0
        while not self._stop.wait(1.0) and sent < len(head):
            for s in self.slow:
                try:
                    s.send(head[sent:sent + 1])
                except OSError:
                    pass
            sent += 1

    def open_count(self) -> int:
        """How many of them the server has not closed."""
        def closed(sock: socket.socket) -> bool:  # readable means EOF: we send nothing to read
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))

        return sum(not closed(s) for s in self.idle + self.slow)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for s in self.idle + self.slow:
            s.close()


def run(calls: int, thread_counts: list[int], out=print, strategy: str = "RANDOM",
        idle_sockets: int = 0, slow_sockets: int = 0) -> dict:
    emulator = EmulatorProcess(seed=1, log=subprocess.DEVNULL)
    url = emulator.url
    moto = _start_moto()
    results: dict[str, dict[int, LoadResult]] = {}
    try:
        worker = _deploy(emulator, strategy)
        _router(emulator)
        chat_worker = _deploy_chat(emulator, strategy)
        host, port = url.split("//", 1)[1].split(":")
        paths: dict[str, Callable[[int], Callable[[int], None]]] = {
            "direct to worker (raw HTTP)": lambda t: _raw_caller("127.0.0.1", worker["port"], "/invocations", t),
            "through emulator (raw HTTP)": lambda t: _raw_caller(host, int(port), "/endpoints/bench/invocations", t),
            ROUTER: lambda t: _raw_caller(host, int(port), "/inference-routers/bench-router/invocations", t,
                                          headers={"X-Amzn-SageMaker-Routing-Target-Name": "echo"}),
            "through emulator (boto3)": lambda t: _boto3_caller(url, t),
            CHAT_DIRECT: lambda t: _raw_caller("127.0.0.1", chat_worker["port"], "/invocations", t, CHAT),
            CHAT_INVOKE: lambda t: _raw_caller(host, int(port), "/endpoints/bench-chat/invocations", t, CHAT),
            CHAT_OPENAI: lambda t: _raw_caller(host, int(port), "/endpoints/bench-chat/openai/v1/chat/completions", t,
                                               CHAT),
        }
        if moto is not None:
            paths["moto_server canned (boto3)"] = lambda t: _boto3_caller(moto[1], t)
        for name, make in paths.items():
            results[name] = {}
            for threads in thread_counts:
                call = make(threads)
                closed_loop(call, threads, max(1, calls // threads // 10))  # warm-up
                results[name][threads] = closed_loop(call, threads, max(1, calls // threads))
                out(f"  measured {name}, {threads} thread(s)", file=sys.stderr)
        if idle_sockets or slow_sockets:
            hostile = _HostileSockets(host, int(port), idle_sockets, slow_sockets)
            name = f"through emulator (raw HTTP), {idle_sockets} idle + {slow_sockets} slow sockets"
            results[name] = {}
            try:
                for threads in thread_counts:
                    call = _raw_caller(host, int(port), "/endpoints/bench/invocations", threads)
                    results[name][threads] = closed_loop(call, threads, max(1, calls // threads))
                    out(f"  measured {name}, {threads} thread(s); {hostile.open_count()} still open",
                        file=sys.stderr)
            finally:
                hostile.close()
    finally:
        emulator.stop()
        if moto is not None:
            moto[0].terminate()
            moto[0].wait()
    report(results, thread_counts, out)
    return {name: {t: {"calls_per_s": r.rate, "p50_ms": r.p(50), "p99_ms": r.p(99), "errors": r.errors}
                   for t, r in by_threads.items()} for name, by_threads in results.items()}


def report(results: dict[str, dict[int, LoadResult]], thread_counts: list[int], out=print) -> None:
    rows = [[name, t, f"{r.rate:.0f}", f"{r.p(50):.2f}", f"{r.p(99):.2f}", r.errors]
            for name, by_threads in results.items() for t, r in by_threads.items()]
    out(table(["path", "threads", "calls/s", "p50 ms", "p99 ms", "errors"], rows))
    direct = results["direct to worker (raw HTTP)"]
    emu_raw = results["through emulator (raw HTTP)"]
    emu_boto = results["through emulator (boto3)"]
    moto = results.get("moto_server canned (boto3)")
    out("")
    for t in thread_counts:
        out(f"{t} thread(s): emulator adds {emu_raw[t].p(50) - direct[t].p(50):.2f} ms at p50 "
            f"({emu_raw[t].p(50) / direct[t].p(50):.2f}x direct)")
        if moto is not None:
            out(f"{t} thread(s): boto3 calls/s, emulator / moto_server = {emu_boto[t].rate / moto[t].rate:.2f}x "
                f"({emu_boto[t].rate:.0f} vs {moto[t].rate:.0f})")
    if moto is None:
        out("moto is not installed: pip install 'moto[server]' for the side-by-side column")
    if ROUTER in results:
        for t in thread_counts:
            out(f"{t} thread(s): an inference router adds {results[ROUTER][t].p(50) - emu_raw[t].p(50):+.2f} ms at "
                "p50 over InvokeEndpoint to the same endpoint")
    if CHAT_OPENAI in results:
        chat_direct, chat_invoke, chat_openai = results[CHAT_DIRECT], results[CHAT_INVOKE], results[CHAT_OPENAI]
        for t in thread_counts:
            invoke_adds = chat_invoke[t].p(50) - chat_direct[t].p(50)
            openai_adds = chat_openai[t].p(50) - chat_direct[t].p(50)
            out(f"{t} thread(s), llm-sim chat: InvokeEndpoint adds {invoke_adds:.2f} ms at p50, the OpenAI-compatible "
                f"path {openai_adds:.2f} ms (difference {openai_adds - invoke_adds:+.2f} ms)")
    for name, by_threads in results.items():
        if "idle" in name:
            for t in thread_counts:
                out(f"{t} thread(s): p50 with hostile sockets / without = {by_threads[t].p(50) / emu_raw[t].p(50):.2f}x, "
                    f"calls/s {by_threads[t].rate / emu_raw[t].rate:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagemaker-emu bench overhead", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000, help="calls per path and thread count")
    parser.add_argument("--threads", default="1,16", help="client thread counts, comma separated")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    parser.add_argument("--strategy", default="RANDOM",
                        choices=("RANDOM", "LEAST_OUTSTANDING_REQUESTS", "PREFIX_AWARE", "KV_AWARE"),
                        help="the echo variant's RoutingStrategy (one instance: the pick's own cost)")
    parser.add_argument("--idle-sockets", type=int, default=0,
                        help="measure again with this many open connections that send nothing")
    parser.add_argument("--slow-sockets", type=int, default=0,
                        help="... and this many that send a request head one byte a second")
    args = parser.parse_args(argv)
    numbers = run(args.calls, [int(t) for t in args.threads.split(",")],
                  out=lambda *a, **k: print(*a, **k, flush=True), strategy=args.strategy,
                  idle_sockets=args.idle_sockets, slow_sockets=args.slow_sockets)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"calls": args.calls, "cpus": os.cpu_count(), "results": numbers}, f, indent=2)
    return 0

