"""The control plane's resource kinds, as data: what the store, ARNs, tags and messages need
of each. A new kind (an inference router, a benchmark job) is a row here, its resource class
in resources.py and its operations; the store's tables, ARN lookup, tags and NotFound texts
follow from the row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from sagemaker_emu.control.resources import JOB_MOVES, MOVES, ROUTER_MOVES, Status


@dataclass(frozen=True)
class Kind:
    arn_type: str  # the resource type in its ARN: arn:...:sagemaker:<region>:<account>:<arn_type>/<name>
    noun: str  # how SageMaker's messages name it ('Could not find endpoint configuration "..."')
    moves: Mapping[Status, frozenset[Status]] | None = None  # the status moves it may make; None: no status


KINDS: dict[str, Kind] = {kind.arn_type: kind for kind in (
    Kind("model", "model"),
    Kind("endpoint-config", "endpoint configuration"),
    Kind("endpoint", "endpoint", MOVES),
    Kind("inference-component", "inference component", MOVES),
    Kind("inference-router", "inference router", ROUTER_MOVES),
    Kind("ai-workload-config", "AI workload configuration"),
    Kind("ai-benchmark-job", "AI benchmark job", JOB_MOVES),
)}
