"""`serve --bootstrap FILE`: create resources before the server answers its first call.

The file (YAML or JSON) has up to three lists, each entry exactly the input of the API call a
deployment script would make, so it can be copied from one:

    models:            [{ModelName: ..., PrimaryContainer: {...}}]     # CreateModel
    endpoint_configs:  [{EndpointConfigName: ..., ProductionVariants: [...]}]
    endpoints:         [{EndpointName: ..., EndpointConfigName: ...}]

Calls go through the real JSON 1.1 front door, so they are validated as any call is. The
server starts answering only when every endpoint is InService.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sagemaker_emu.app import Emulator

SECTIONS = (("models", "CreateModel"), ("endpoint_configs", "CreateEndpointConfig"), ("endpoints", "CreateEndpoint"))


class BootstrapError(Exception):
    pass


def load(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise BootstrapError(f"{path}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise BootstrapError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise BootstrapError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict) or set(data) - {name for name, _ in SECTIONS} or \
            not all(isinstance(data[k] or [], list) for k in data):
        raise BootstrapError(f"{path}: expected a mapping of lists under the keys {', '.join(n for n, _ in SECTIONS)}")
    return data


def apply(emulator: "Emulator", path: str | Path, timeout: float = 600.0) -> list[str]:
    """Make every call in the file through the emulator's own app, then wait for the
    endpoints; returns the endpoint names."""
    data = load(path)
    client = emulator.app.test_client()
    for section, operation in SECTIONS:
        for n, params in enumerate(data.get(section) or [], start=1):
            resp = client.post("/", data=json.dumps(params), headers={
                "X-Amz-Target": f"SageMaker.{operation}", "Content-Type": "application/x-amz-json-1.1"})
            if resp.status_code != 200:
                error = json.loads(resp.data)
                raise BootstrapError(f"{path}: {section}[{n}]: {operation} failed: {error['__type']}: {error['Message']}")
    names = [e["EndpointName"] for e in data.get("endpoints") or []]
    backend = emulator.backends(emulator.config.region)
    deadline = time.time() + timeout
    for name in names:
        backend.wait_settled(name, max(0.0, deadline - time.time()))
        ep = backend.snapshot(name)
        status, reason = (ep.status, ep.failure_reason) if ep else ("gone", None)
        if status != "InService":
            raise BootstrapError(f"{path}: endpoint {name} is {status}" + (f": {reason}" if reason else ""))
    return names
