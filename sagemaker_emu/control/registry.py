"""The control plane's dispatch table: operation name -> function, filled by `@operation`
in control/operations.py and control/inference_components.py (imported by the package)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from sagemaker_emu.control.store import Backend


@dataclass(frozen=True)
class Call:
    """What the protocol layer tells an operation about the request beyond its input."""

    waiter: bool = False  # the caller is a boto3 waiter polling for a status
    waiter_hold: float = 0.0  # how long a waiter's poll may wait for a transition to finish


Operation = Callable[["Backend", dict[str, Any], Call], dict[str, Any]]
OPERATIONS: dict[str, Operation] = {}


ACRONYMS = {"ai": "AI"}  # the API's own spelling: CreateAIBenchmarkJob


def operation(fn: Operation) -> Operation:
    name = "".join(ACRONYMS.get(part, part.title()) for part in fn.__name__.split("_"))
    OPERATIONS[name] = fn
    return fn
