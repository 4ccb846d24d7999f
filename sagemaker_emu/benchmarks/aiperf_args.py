"""A job's `aiperf profile` command line: the WorkloadSpec's parameters as AIPerf's flags of
the same names, and the flags the job sets itself (where the load goes, with what key, which
tokenizer, where the results go).

The load goes to SageMaker's OpenAI-compatible path: the endpoint's, or each named inference
component's (AIPerf spreads requests over several `--url`s), with a bearer token, so the job's
calls are routed, metered and logged as any caller's are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

CHANNELS = "/opt/ml/input/data/"  # where SageMaker mounts a dataset channel in the benchmark container


def urls(base: str, endpoint: str, components: Sequence[str]) -> list[str]:
    if components:
        return [f"{base}/endpoints/{endpoint}/inference-components/{c}/openai/v1" for c in components]
    return [f"{base}/endpoints/{endpoint}/openai/v1"]


def local_path(value: str, inputs: Path) -> Path:
    """A dataset path as the workload names it in the container, on this machine."""
    if not value.startswith(CHANNELS):
        raise ValueError(f"input_file {value!r} is not under {CHANNELS}<channel>/: name a file of a DatasetConfig "
                         "channel.")
    relative = Path(value[len(CHANNELS):])
    if ".." in relative.parts:
        raise ValueError(f"input_file {value!r} leaves its channel's directory.")
    return inputs / relative


def arguments(parameters: dict[str, Any], targets: list[str], model: str, token: str, tokenizer: Path,
              artifacts: Path, inputs: Path) -> list[str]:
    """`aiperf profile ...` for `parameters` (checked and with defaults, control/workload_spec.py)."""
    args = ["profile", "--model", model, "--endpoint-type", "chat", "--api-key", token, "--tokenizer", str(tokenizer),
            "--artifact-dir", str(artifacts), "--ui-type", "none", "--export-outputs-json"]
    for url in targets:
        args += ["--url", url]
    for name, value in parameters.items():
        if name == "tokenizer":
            continue  # resolved to a local directory: `tokenizer`
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            args += [flag] if value else []  # AIPerf's boolean flags are off unless given
        elif isinstance(value, dict):
            args += [flag, json.dumps(value)]
        elif name == "input_file":
            args += [flag, str(local_path(value, inputs))]
        else:
            args += [flag, str(value)]
    return args
