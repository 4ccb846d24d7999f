"""What an invocation asks, what happened to it, and what it answers: shared by every way a
request reaches an instance (InvokeEndpoint, its stream, async, and the front doors to come).

`InvokeRequest` is frozen: what the caller sent. `Outcome` is written while the call runs, by
the endpoint path's stages (runtime/stages.py) and the dispatch core (runtime/dispatch.py), and
read once, when the call is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from sagemaker_emu.bodies import Body

if TYPE_CHECKING:
    from sagemaker_emu.fleet.api import InstanceView, Loaded, MultiModelView
    from sagemaker_emu.routing.strategies import RouteRequest, Strategy
    from sagemaker_emu.runtime.api import Target

INVOCATIONS_PATH = "/invocations"
CHAT_PATH = "/v1/chat/completions"  # the container's route for SageMaker's OpenAI-compatible path


@dataclass(frozen=True)
class InvokeRequest:
    endpoint_name: str
    body: Body  # bytes, or an asynchronous input in a file
    region: str
    account: str | None = None  # whose endpoint (None: the emulator's default account)
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    target_variant: str | None = None
    target_model: str | None = None
    target_container_hostname: str | None = None
    inference_id: str | None = None
    inference_component: str | None = None
    session_id: str | None = None
    prefix_aware_id: str | None = None
    caller_gone: Callable[[], bool] | None = None  # asked while the instance works
    timeout: float | None = None  # seconds the container has to answer; None: the server's --model-timeout
    request_id: str = ""  # the x-amzn-RequestId of the answer, which some of SageMaker's texts name
    chat: bool = False  # an OpenAI Chat Completions call: to the container's CHAT_PATH, routed by its messages


@dataclass
class ReadyModel:
    """A multi-model endpoint's model, loaded on an instance and held there for one call."""

    multi: "MultiModelView"
    instance: "InstanceView"
    loaded: "Loaded"
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.multi.done(self.instance, self.loaded)


@dataclass
class Outcome:
    """One call as it goes: where the stages sent it, and how it ended."""

    endpoint_found: bool = False  # failures are counted only for endpoints that exist
    target: "Target | None" = None
    variant: str = ""  # the production variant, once chosen (metrics)
    key: str = ""  # the fleet key routed among: the variant, or a component's copies
    component: str | None = None  # the inference component invoked, once it is known to exist
    adapter: str | None = None  # an adapter served by its base's copies
    no_capacity: bool = False  # the component has no copy (NoCapacityInvocationFailures)
    candidates: Sequence["InstanceView"] = ()
    pool_size: int = 1  # routable instances (or copies) it was routed among: InvocationsPerInstance
    router: "Strategy | None" = None
    route: "RouteRequest | None" = None  # what the router decided on
    instance: "InstanceView | None" = None
    model: ReadyModel | None = None  # a multi-model endpoint's model, held loaded for the call
    path: str = INVOCATIONS_PATH  # the container's route: a multi-model container's /models/<name>/invoke
    sent_to: tuple[str, int | None] | None = None  # (instance id, pid) last dispatched to, for log lines
    code: str | None = None  # the error code the caller sees; None while it has not failed
    recorded: bool = False

    def next_attempt(self) -> None:
        """Routed again from the start (the instance left routing, or refused the connection)."""
        if self.model is not None:
            self.model.release()
        self.model, self.instance, self.route, self.router = None, None, None, None
        self.key, self.candidates, self.path = "", (), INVOCATIONS_PATH


@dataclass
class InvokeResult:
    body: Body  # bytes, or (an asynchronous call's) the file it was written to
    content_type: str
    variant: str
    custom_attributes: str | None = None
    new_session_id: str | None = None  # the container's X-Amzn-SageMaker-New-Session-Id
    closed_session_id: str | None = None


@dataclass
class StreamResult:
    content_type: str
    variant: str
    custom_attributes: str | None
    chunks: Iterator[bytes]
