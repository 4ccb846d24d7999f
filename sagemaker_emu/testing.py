"""Run the emulator inside your own process, for tests and notebooks.

    from sagemaker_emu.testing import EmulatorServer

    with EmulatorServer(port=0) as emu:           # a free port on 127.0.0.1
        sm = emu.client("sagemaker")
        ...

    import sagemaker_emu
    with sagemaker_emu.running() as emu:           # also points boto3 at it through the
        boto3.client("sagemaker").list_models()    # AWS_ENDPOINT_URL_* variables

Stopping the server stops every worker process it started.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from dataclasses import replace
from typing import Any, Iterator

from sagemaker_emu.config import Config
from sagemaker_emu.edge.http_server import EmulatorHTTPServer

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


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
        import boto3
        from botocore.config import Config as BotoConfig

        return boto3.client(service, endpoint_url=self.url, region_name=self.region,
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            config=BotoConfig(**config) if config else None)

    def environment(self) -> dict[str, str]:
        """The variables that point boto3 (1.28+) at this server."""
        return {"AWS_ENDPOINT_URL_SAGEMAKER": self.url, "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.url,
                "AWS_DEFAULT_REGION": self.region, **DUMMY_CREDENTIALS}

    def fault(self, kind: str, endpoint: str, **rule: Any) -> dict:
        """Inject a fault: `fault("throttle", "my-endpoint", probability=0.5)`; the kinds are in
        sagemaker_emu/runtime/faults.py. Returns the rule with its id; `reset()` removes all."""
        from dataclasses import asdict

        return asdict(self._server.emulator.runtime.faults.add({"kind": kind, "endpoint": endpoint, **rule}))

    def reset(self) -> None:
        """Delete every resource, stop every worker, forget sessions, metrics and faults."""
        if self._server is not None:
            self._server.emulator.reset()

    def stop(self) -> None:
        """Stop serving and stop every worker process."""
        if self._server is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._server = self._thread = None

    def __enter__(self) -> "EmulatorServer":
        return self.start()

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
    with EmulatorServer(**settings) as emu, patched_environment(emu.environment()):
        yield emu
