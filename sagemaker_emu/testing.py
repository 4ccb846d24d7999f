"""The one harness for running the emulator from Python: tests, benchmarks, notebooks.

    from sagemaker_emu.testing import EmulatorServer, deploy

    with EmulatorServer(port=0) as emu:           # in this process, on a free port
        sm = emu.client("sagemaker")
        deploy(sm, "my-endpoint")                  # an echo endpoint, InService
        ...

    import sagemaker_emu
    with sagemaker_emu.running() as emu:           # also points boto3 at it through the
        boto3.client("sagemaker").list_models()    # AWS_ENDPOINT_URL_* variables

    with EmulatorProcess("--seed", "7") as emu:    # `sagemaker-emu serve` as its own process,
        ...                                        # with its log kept (benchmarks, CLI tests)

Stopping either stops every worker process it started. `client()` builds the boto3 clients
all of them use; `deploy()` and `variant()` build the resources most callers need.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, Iterator

from sagemaker_emu import aws_hosts, client_env
from sagemaker_emu.config import Config
from sagemaker_emu.edge.http_server import EXIT_WITH_PARENT, EmulatorHTTPServer

DUMMY_CREDENTIALS = client_env.DUMMY_CREDENTIALS
ECHO_IMAGE = "sagemaker-emu/echo"


def client(url: str, service: str = "sagemaker", region: str = "us-east-1", access_key: str | None = None,
           **config: Any):
    """A boto3 client for the emulator at `url`, with dummy credentials (`access_key`, if given:
    a 12-digit one calls as that account). `config` is botocore Config fields; one attempt per
    call unless `retries` says otherwise, so a failure shows where it happened instead of being
    retried away."""
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client(service, endpoint_url=url, region_name=region,
                        aws_access_key_id=access_key or DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                        config=BotoConfig(**{"retries": {"total_max_attempts": 1}, **config}))


def variant(name: str = "AllTraffic", model: str = "m1", **extra: Any) -> dict:
    """A ProductionVariant: one ml.m5.large instance unless `extra` says otherwise (InstancePools
    take the place of InstanceType)."""
    kind = {} if "InstancePools" in extra else {"InstanceType": "ml.m5.large"}
    return {"VariantName": name, "ModelName": model, **kind, "InitialInstanceCount": 1, **extra}


def deploy(sm, name: str = "ep1", variants: list[dict] | None = None, wait: bool = True,
           environment: dict[str, str] | None = None, container: dict | None = None, **variant_fields: Any) -> str:
    """Create the models `variants` name that do not exist yet (each runs `container`, by default
    the built-in echo image, with `environment` added), a config `<name>-config` and endpoint `name`; with
    `wait`, return once it is InService. By default one variant runs model `<name>-model`,
    with `variant_fields` (InitialInstanceCount, RoutingConfig, ...). Returns the config name."""
    container = dict(container or {"Image": ECHO_IMAGE})
    container["Environment"] = {**container.get("Environment", {}), **(environment or {})}
    variants = variants or [variant(model=f"{name}-model", **variant_fields)]
    existing = {m["ModelName"] for page in sm.get_paginator("list_models").paginate() for m in page["Models"]}
    for model in dict.fromkeys(v["ModelName"] for v in variants if v["ModelName"] not in existing):
        sm.create_model(ModelName=model, PrimaryContainer=container)
    config = f"{name}-config"
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=variants)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    if wait:  # the emulator holds a waiter's poll until the status settles
        from botocore.exceptions import WaiterError

        try:
            sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
        except WaiterError as exc:  # say why: botocore's message names only the status
            reason = exc.last_response.get("FailureReason") if isinstance(exc.last_response, dict) else None
            raise WaiterError(exc.kwargs["name"], f"{exc.kwargs['reason']}; FailureReason: {reason}",
                              exc.last_response) from None
    return config


class EmulatorServer:
    def __init__(self, port: int = 0, host: str = "127.0.0.1", region: str = "us-east-1", **settings: Any) -> None:
        """`settings` are Config fields: seed, model_timeout, image_map, waiter_hold, ...
        Model data and code may come from the current directory and the temporary directory
        (where pytest's tmp_path lives) unless `model_roots` says otherwise."""
        settings.setdefault("model_roots", (os.getcwd(), tempfile.gettempdir()))
        self.config = replace(Config(), host=host, port=port, region=region, **settings)
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "EmulatorServer":
        if self._server is None:
            self._server = EmulatorHTTPServer(self.config)
            self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="sagemaker-emu")
            self._thread.start()
        return self

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start() or use it as a context manager")
        return self._server.url

    @property
    def region(self) -> str:
        return self.config.region

    def client(self, service: str = "sagemaker", **config: Any):
        """A boto3 client for this server: `client("sagemaker")` or `client("sagemaker-runtime")`."""
        return client(self.url, service, self.region, **config)

    def environment(self) -> dict[str, str]:
        """The variables that point boto3 (1.28+) at this server, service by service, and the
        SageMaker SDK's config file naming its default bucket (client_env.py)."""
        elsewhere = {"s3": self.config.s3_endpoint} if self.config.s3_endpoint else None
        return client_env.environment(self.url, self.region, self.config.account,
                                      Path(tempfile.gettempdir()) / "sagemaker-emu", elsewhere)

    def fault(self, kind: str, endpoint: str, **rule: Any) -> dict:
        """Inject a fault: `fault("throttle", "my-endpoint", probability=0.5)`; the kinds are in
        sagemaker_emu/runtime/faults.py. Returns the rule with its id; `reset()` removes all."""
        from dataclasses import asdict

        assert self._server is not None, "the server is started"
        return asdict(self._server.emulator.runtime.faults.add({"kind": kind, "endpoint": endpoint, **rule}))

    def reset(self) -> None:
        """Delete every resource, stop every worker, forget sessions, metrics and faults."""
        if self._server is not None:
            self._server.emulator.reset()

    def stop(self) -> None:
        """Stop serving and stop every worker process."""
        if self._server is not None:
            self._server.shutdown()
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = self._thread = None

    def __enter__(self) -> "EmulatorServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class EmulatorProcess:
    """`sagemaker-emu serve --port 0 ARGS` in its own process: the server as users run it, with
    no interpreter shared with the caller (benchmarks measure it alone). It stops with its
    workers if the calling process dies without stopping it (`python`: the interpreter it runs
    on, another environment's). Its log goes to `log`
    (an open binary file, or subprocess.DEVNULL) or, by default, to a temporary file `logs()` reads."""

    def __init__(self, *args: str, seed: int = 7, log: IO[bytes] | int | None = None,
                 model_roots: tuple[str, ...] | None = None, env: dict[str, str] | None = None,
                 python: str = sys.executable) -> None:
        roots = model_roots if model_roots is not None else (os.getcwd(), tempfile.gettempdir())
        self.log = log if log is not None else tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [python, "-m", "sagemaker_emu", "serve", "--port", "0", "--seed", str(seed),
             *(arg for root in roots for arg in ("--model-root", root)), *args],
            stdout=subprocess.PIPE, stderr=self.log, text=True,
            env={**os.environ, **(env or {}), EXIT_WITH_PARENT: "1"})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the server prints its URL once it is bound
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"the emulator did not start: {line!r} {self.logs()}")
        self.url = line.split("listening on", 1)[1].strip()
        host, port = self.url.split("//", 1)[1].rsplit(":", 1)
        self.host, self.port = host.strip("[]"), int(port)  # for raw http.client connections

    def client(self, service: str = "sagemaker", **config: Any):
        return client(self.url, service, **config)

    def logs(self) -> str:
        """Everything the server has logged (when it logs to the default temporary file)."""
        if isinstance(self.log, int) or not hasattr(self.log, "seek"):
            return ""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def post(self, path: str, body: bytes = b"", headers: dict | None = None, method: str = "POST"):
        """A raw HTTP call; returns (status, headers, body)."""
        req = urllib.request.Request(self.url + path, data=body if method == "POST" else None,
                                     headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()

    def call(self, operation: str, body: bytes | dict, headers: dict | None = None):
        """A raw JSON 1.1 control-plane call; returns (status, parsed body)."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        h = {"X-Amz-Target": f"SageMaker.{operation}", "Content-Type": "application/x-amz-json-1.1", **(headers or {})}
        status, _, data = self.post("/", raw, h)
        return status, json.loads(data) if data else None

    def capacity(self, instance_type: str | None = None, count: int | None = None) -> dict:
        """`/_emu/capacity`: with `instance_type`, limit it to `count` instances (None: no limit)
        first; returns each type's limit and instances in use."""
        if instance_type is None:
            status, _, body = self.post("/_emu/capacity", method="GET")
        else:
            status, _, body = self.post("/_emu/capacity", json.dumps({"InstanceType": instance_type,
                                                                       "Count": count}).encode())
        if status != 200:
            raise RuntimeError(f"/_emu/capacity answered {status}: {body!r}")
        return json.loads(body)["capacity"]

    def endpoint_view(self, name: str) -> dict:
        """`/_emu/endpoints/<name>`: variants, instances, loads."""
        status, _, body = self.post(f"/_emu/endpoints/{name}", method="GET")
        if status != 200:
            raise LookupError(body.decode(errors="replace"))
        return json.loads(body)

    def reset(self) -> None:
        self.post("/_emu/reset")

    def stop(self) -> None:
        """SIGTERM (the server stops its workers), SIGKILL after 10 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> "EmulatorProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def patched_environment(values: dict[str, str]) -> Iterator[None]:
    """Set `values` in os.environ for the block, then put back exactly what was there."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextlib.contextmanager
def running(**settings: Any) -> Iterator[EmulatorServer]:
    """Serve on a free port and point boto3 at it (endpoint variables, dummy credentials and a
    region) for the block; everything is restored and every worker stopped afterwards."""
    aws_hosts.install()  # this process's SDK calls to fixed AWS hosts follow the variables too
    with EmulatorServer(**settings) as emu, patched_environment(emu.environment()):
        yield emu


class RayCluster:
    """A three-node Ray cluster on this machine (`python -m sagemaker_emu.ray_cluster`, run by
    `python`, which must have Ray): `address`, and `nodes`, each node's id -> its kind ("head",
    "A10G", "L40S"). It shuts down with `stop()`, or when the calling process dies."""

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self.proc = subprocess.Popen([python, "-m", "sagemaker_emu.ray_cluster"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError("the Ray cluster did not start")
        started = json.loads(line)
        self.address: str = started["address"]
        self.nodes: dict[str, str] = started["nodes"]

    def emulator(self, *args: str, **kwargs: Any) -> EmulatorProcess:
        """An emulator whose instances run on this cluster, on the cluster's Python."""
        return EmulatorProcess("--fleet", "ray", "--ray-address", self.address, *args, python=self.python, **kwargs)

    def stop(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()  # it shuts the cluster down
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
