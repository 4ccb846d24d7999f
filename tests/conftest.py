"""Shared fixtures: the real server in a subprocess on an ephemeral loopback port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.request

import boto3
import pytest
from botocore.config import Config

REGION = "us-east-1"


class RunningServer:
    def __init__(self, *args: str, seed: int = 7) -> None:
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sagemaker_emu", "serve", "--port", "0", "--seed", str(seed),
             "--model-root", os.getcwd(), "--model-root", tempfile.gettempdir(), *args],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        line = self.proc.stdout.readline()  # the server prints its URL once it is bound
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"server did not start: {line!r} {self.logs()}")
        self.url = line.split("listening on", 1)[1].strip()

    def logs(self) -> str:
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

    def call(self, operation: str, body, headers: dict | None = None):
        """A raw JSON 1.1 call; returns (status, parsed body)."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        h = {"X-Amz-Target": f"SageMaker.{operation}", "Content-Type": "application/x-amz-json-1.1"}
        h.update(headers or {})
        status, _, data = self.post("/", raw, h)
        return status, json.loads(data) if data else None

    def endpoint_view(self, name: str) -> dict:
        status, _, body = self.post(f"/_emu/endpoints/{name}", method="GET")
        assert status == 200, body
        return json.loads(body)

    def reset(self) -> None:
        self.post("/_emu/reset")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


@pytest.fixture(scope="session")
def server():
    srv = RunningServer()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _clean_state(request):
    if "server" in request.fixturenames:
        request.getfixturevalue("server").reset()


def client(url: str, service: str = "sagemaker", region: str = REGION, **config):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**{"retries": {"total_max_attempts": 1}, **config}),
    )


@pytest.fixture
def sm(server):
    return client(server.url)


@pytest.fixture
def rt(server):
    return client(server.url, "sagemaker-runtime")


@pytest.fixture
def sm_unvalidated(server):
    """A client that sends what botocore would refuse, as a user with validation off can."""
    return client(server.url, parameter_validation=False)
