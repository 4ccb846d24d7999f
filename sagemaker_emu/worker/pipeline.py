"""A model of several containers (`Containers` in CreateModel): one process per container, as
SageMaker runs them, behind this instance's own container-contract server.

The fleet writes what each container runs in a JSON file named by SAGEMAKER_EMU_PIPELINE. This
process starts each one as a worker of its own (`python -m sagemaker_emu.worker <kind>`, its
Environment and model directory, a port of its own; it dies with this process), answers
/ping when all of them do, and exits when one of them exits, so that the fleet restarts the
instance as it would restart a one-container one.

Serial (an inference pipeline, the default): each container's answer is the next one's
request, its Content-Type with it; only the last container gets the caller's Accept, so the
ones before answer in their default format (SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, as
SageMaker's pipeline guide advises); a non-2xx answer ends the chain. Direct: the call runs
only the container its `X-Amzn-SageMaker-Target-Container-Hostname` names.
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlparse

from sagemaker_emu.worker.contract import EXIT_PORT_TAKEN, Invocation, Model, Reply

log = logging.getLogger("sagemaker_emu.worker.pipeline")

PIPELINE_SPEC = "SAGEMAKER_EMU_PIPELINE"
# Each container's answer, for its metrics (ContainerLatency): `<hostname>=<status>:<seconds>,...`,
# read by the runtime (runtime/invoke.py's CONTAINERS_HEADER) and not passed on.
TIMINGS_HEADER = "X-Sagemaker-Emu-Containers"
HOSTNAME_HEADER = "x-amzn-sagemaker-target-container-hostname"
PING_TIMEOUT_S = 2.0  # SageMaker's /ping answer limit
CALL_TIMEOUT_S = 3600.0  # the emulator's --model-timeout applies in front of the instance
WATCH_S = 0.2
# Headers of a call passed on to every container, and of an answer passed back to the caller.
_FORWARDED = ("x-amzn-sagemaker-custom-attributes", "x-amzn-sagemaker-inference-id", "x-amzn-sagemaker-session-id",
              HOSTNAME_HEADER)
_RETURNED = ("x-amzn-sagemaker-custom-attributes", "x-amzn-sagemaker-new-session-id",
             "x-amzn-sagemaker-closed-session-id")


@dataclass
class Container:
    """One container: a built-in image or inference.py (`kind`), an --image-map command, or an
    --image-map URL of a server already running elsewhere."""

    hostname: str
    env: dict[str, str]
    model_dir: str
    kind: str | None = None
    command: list[str] | None = None
    cwd: str | None = None
    url: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    process: subprocess.Popen | None = None

    def start(self, base_env: dict[str, str]) -> None:
        """Start its worker on a free port (another one if the port is taken before it binds)."""
        if self.url is not None:
            parsed = urlparse(self.url)
            self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
            return
        argv = ([sys.executable, "-m", "sagemaker_emu.worker.guard", "--", *self.command] if self.command
                else [sys.executable, "-m", "sagemaker_emu.worker", self.kind or "toolkit"])
        for _ in range(5):
            self.port = _free_port()
            env = {k: v for k, v in base_env.items() if k != PIPELINE_SPEC}
            env.update(self.env)
            env.update({"SAGEMAKER_BIND_TO_PORT": str(self.port), "SM_MODEL_DIR": self.model_dir,
                        "SAGEMAKER_EMU_PARENT_PID": str(os.getpid())})
            self.process = subprocess.Popen(argv, env=env, cwd=self.cwd or self.model_dir, stdin=subprocess.DEVNULL)
            try:  # a taken port shows at once: the worker exits with EXIT_PORT_TAKEN
                if self.process.wait(timeout=0.2) != EXIT_PORT_TAKEN:
                    return
            except subprocess.TimeoutExpired:
                return

    def ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.port}/ping", timeout=PING_TIMEOUT_S) as resp:
                return resp.status == 200
        except OSError:
            return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pipeline(Model):
    def __init__(self, containers: list[Container], direct: bool, env: dict[str, str]) -> None:
        self.containers = containers
        self.by_hostname = {c.hostname: c for c in containers}
        self.direct = direct
        for container in containers:  # from this thread, which lives as long as the process
            container.start(env)
            log.info("container %s started%s", container.hostname,
                     f", pid {container.process.pid}" if container.process else f" at {container.url}")
        threading.Thread(target=self._watch, daemon=True, name="containers").start()

    def _watch(self) -> None:
        """One container gone is the instance gone: exit, and the fleet restarts it whole."""
        while True:
            for container in self.containers:
                code = container.process.poll() if container.process else None
                if code is not None:
                    log.error("container %s exited with code %s; stopping the instance", container.hostname, code)
                    for other in self.containers:
                        if other.process is not None and other.process.poll() is None:
                            other.process.kill()
                    os._exit(1)
            time.sleep(WATCH_S)

    def healthy(self) -> bool:
        return all(container.ping() for container in self.containers)

    def invoke(self, invocation: Invocation) -> Reply:
        if self.direct:
            container = self.by_hostname.get(invocation.headers.get(HOSTNAME_HEADER, ""))
            if container is None:
                return Reply(status=404, body=b'{"message": "no container of that hostname"}')
            chain = [container]
        else:
            chain = self.containers
        body, content_type, timings = invocation.body, invocation.content_type, []
        for number, container in enumerate(chain, 1):
            last = number == len(chain)
            started = time.perf_counter()
            reply = _call(container, body, content_type, invocation.accept if last else None, invocation.headers)
            if not last and 200 <= reply.status < 300:
                body = reply.body if isinstance(reply.body, bytes) else b"".join(reply.body)
                content_type = reply.content_type
            timings.append(f"{container.hostname}={reply.status}:{time.perf_counter() - started:.6f}")
            if last or not 200 <= reply.status < 300:
                reply.headers[TIMINGS_HEADER] = ",".join(timings)
                return reply
        raise AssertionError("a pipeline has at least two containers")


def _call(container: Container, body: bytes, content_type: str | None, accept: str | None,
          headers: dict[str, str]) -> Reply:
    """POST /invocations to one container; its answer's body is streamed on as it arrives."""
    sent = {name: headers[name] for name in _FORWARDED if name in headers}
    if content_type is not None:
        sent["Content-Type"] = content_type
    if accept is not None:
        sent["Accept"] = accept
    conn = http.client.HTTPConnection(container.host, container.port, timeout=CALL_TIMEOUT_S)
    try:
        conn.request("POST", "/invocations", body=body, headers=sent)
        resp = conn.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        return Reply(status=502, body=f"container {container.hostname} did not answer: {exc}".encode(),
                     content_type="text/plain")

    def chunks() -> Iterator[bytes]:
        try:
            while chunk := resp.read1(65536):
                yield chunk
        finally:
            conn.close()

    returned = {name: value for name in _RETURNED if (value := resp.getheader(name)) is not None}
    return Reply(body=chunks(), status=resp.status, content_type=resp.getheader("Content-Type", "application/json"),
                 custom_attributes=returned.pop("x-amzn-sagemaker-custom-attributes", None), headers=returned)
