"""InvokeInferenceRouter: a front door one level above the endpoint path.

The router's routing target names destinations (endpoints or inference components, in any
Region); this picks one by what the emulator knows of each (serving, routable instances or
copies, requests in flight per instance), runs the endpoint path and the dispatch core for it
in process, and retries once elsewhere when the first attempt failed before a model answered
(throttled, no capacity, gone). The reasons are the runtime model's:

    local-preferred     a healthy destination in the router's Region
    capacity-available  none in the router's Region could take it; two or more elsewhere could
    only-healthy        none in the router's Region could; exactly one elsewhere could
    failover            moved away from local destinations that are slow or failing (or from
                        one that failed this call), a degraded destination's probe, or none
                        looked healthy and one is tried anyway

Which destinations are slow or failing is the router's own record of its attempts
(router_health.py); degraded ones are used after the others, never excluded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

from sagemaker_emu.errors import (
    EmuError, InvalidInput, ModelFailure, ModelNotReady, NotServing, Throttled, Unavailable,
)
from sagemaker_emu.fleet.api import component_key
from sagemaker_emu.runtime.api import RouterDestination, Routers, Target
from sagemaker_emu.runtime.cross_region import CrossRegionCaps, cap
from sagemaker_emu.runtime.invoke import Runtime
from sagemaker_emu.runtime.request import InvokeRequest, InvokeResult, Outcome
from sagemaker_emu.runtime.router_health import RouterHealth

LOCAL, SPREAD, ONLY, FAILOVER = "local-preferred", "capacity-available", "only-healthy", "failover"
ATTEMPT_S = 60.0  # each attempt's limit through a router, whatever InvokeEndpoint's is (the runtime model)


@dataclass(frozen=True)
class RouterRequest:
    region: str  # the router's
    router: str
    target: str
    body: bytes
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    inference_id: str | None = None
    prefix_aware_id: str | None = None
    caller_gone: Callable[[], bool] | None = None
    request_id: str = ""
    account: str | None = None  # the caller's, and so the router's (None: the emulator's default account)


@dataclass(frozen=True)
class Routed:
    result: InvokeResult
    destination: str  # the ARN that served it
    reason: str


class RouterRuntime:
    def __init__(self, runtime: Runtime, routers: Routers, health: RouterHealth | None = None,
                 caps: CrossRegionCaps | None = None,
                 error_type: Callable[[EmuError], str] = lambda exc: type(exc).__name__) -> None:
        self.runtime = runtime
        self.routers = routers
        self.health = health or RouterHealth()
        self.caps = caps or CrossRegionCaps()
        self.error_type = error_type  # the code a caller sees for an error (the protocol's), for the metrics

    def invoke(self, req: RouterRequest) -> Routed:
        target = self.routers.routing_target(req.region, req.router, req.target, req.account)
        if target.async_config is not None:
            raise InvalidInput(f"Routing target {req.target} of inference router {req.router} is asynchronous: "
                               "invoke it with InvokeInferenceRouterAsync.")
        router = target.router_arn
        serving = {d.arn: self._serving(d) for d in target.destinations}  # one snapshot each, read once
        order = self._order(req.region, router, target.destinations, serving)
        began, failure, error_type = time.perf_counter(), None, ""
        last: tuple[str, str] | None = None  # where the call went last, and why: counted once
        answered_s: float | None = None  # how long the destination that answered took
        try:
            for attempt, (destination, reason) in enumerate(order[:2]):  # the first choice, and one retry
                last = (destination.arn, reason if attempt == 0 else FAILOVER)
                out, started = Outcome(), time.perf_counter()
                try:
                    routed = Routed(self.runtime.invoke(
                        self._request(req, destination, router, serving[destination.arn]), out), *last)
                except ModelFailure:  # the model answered: the destination is up
                    answered_s = time.perf_counter() - started
                    self.health.answered(router, destination.arn, answered_s)
                    raise
                except EmuError as exc:
                    if destination.allowed:  # a refusal by policy says nothing of its health
                        self.health.failed(router, destination.arn)
                    if not _retryable(exc, out):
                        raise
                    # a component with no copies: the destination is not ready (ModelNotReadyException)
                    failure = ModelNotReady(f"Destination {destination.arn} isn't ready to serve the model: "
                                            f"{exc.message}") if out.no_capacity else exc
                else:
                    answered_s = time.perf_counter() - started
                    self.health.answered(router, destination.arn, answered_s)
                    return routed
            assert failure is not None
            raise failure
        except EmuError as exc:
            error_type = self.error_type(exc)
            raise
        finally:
            if last is not None:
                self.runtime.metrics.router_answered(req.router, req.target, *last, error_type,
                                                     time.perf_counter() - began, answered_s)

    def reset(self) -> None:
        """Forget what routers have seen of their destinations, and the cross-Region buckets."""
        self.health.clear()
        self.caps.clear()

    def _request(self, req: RouterRequest, destination: RouterDestination, router_arn: str,
                 target: Target | None) -> InvokeRequest:
        if not destination.allowed:
            raise denied(destination, router_arn)
        if destination.endpoint is None:
            raise Unavailable(f"Destination {destination.arn} cannot be reached: it does not exist, or it is "
                              "another account's.")
        if destination.region != req.region and target is not None:  # not serving: the endpoint path says why
            self._admit(target)
        return InvokeRequest(endpoint_name=destination.endpoint, region=destination.region,
                             account=destination.account, body=req.body,
                             inference_component=destination.component, content_type=req.content_type,
                             accept=req.accept, custom_attributes=req.custom_attributes,
                             inference_id=req.inference_id, prefix_aware_id=req.prefix_aware_id,
                             caller_gone=req.caller_gone, request_id=req.request_id,
                             timeout=min(ATTEMPT_S, self.runtime.model_timeout))

    def _admit(self, target: Target) -> None:
        """The destination endpoint's cap on requests from routers in other Regions, if it has one."""
        if target.cross_region is None:
            return
        instances = sum(i.routable for v in target.variants for i in target.fleet.instances(v.name))
        per_second = cap(target.cross_region, instances)
        if not self.caps.admit(target.arn, per_second):
            raise Throttled(f"Endpoint {target.arn} refused the request: its cross-Region traffic cap "
                            f"({per_second} requests per second from inference routers in other Regions) is reached.")

    def _order(self, region: str, router: str, destinations: Sequence[RouterDestination],
               serving: dict[str, Target | None]) -> list[tuple[RouterDestination, str]]:
        """Destinations in the order they are tried, each with the reason it would be chosen:
        healthy local ones by load, then healthy ones elsewhere by load, then degraded ones (a
        degraded one due a probe goes first), then those that look unable to take a request."""
        loads = {d.arn: self._load(d, serving[d.arn]) for d in destinations}
        able = sorted((d for d in destinations if loads[d.arn] is not None), key=lambda d: loads[d.arn] or 0.0)
        degraded = self.health.degraded(router, [d.arn for d in able])
        local = [d for d in able if d.region == region and d.arn not in degraded]
        remote = [d for d in able if d.region != region and d.arn not in degraded]
        slow = [d for d in able if d.arn in degraded]
        due = next((d for d in slow if self.health.probe(router, d.arn)), None)
        if due is not None:
            first = (due, FAILOVER)
        elif local:
            first = (local[0], LOCAL)
        elif remote:  # failover when local ones can take it but are slow or failing
            first = (remote[0], FAILOVER if any(d.region == region for d in slow)
                     else SPREAD if len(remote) > 1 else ONLY)
        else:  # none looks healthy: try one anyway
            first = ((slow or list(destinations))[0], FAILOVER)
        rest = [(d, FAILOVER) for d in (*local, *remote, *slow, *destinations) if d is not first[0]]
        return [first, *{d.arn: (d, why) for d, why in rest}.values()]

    def _serving(self, destination: RouterDestination) -> Target | None:
        """The endpoint that serves the destination, if it may be called and is serving."""
        if destination.endpoint is None or not destination.allowed:
            return None
        try:
            return self.runtime.directory.serving(destination.region, destination.endpoint, destination.account)
        except InvalidInput:
            return None

    @staticmethod
    def _load(destination: RouterDestination, target: Target | None) -> float | None:
        """Requests in flight per routable instance (or copy); None when it cannot take a request."""
        if target is None:
            return None
        if destination.component is not None:
            component = target.components.get(destination.component)
            if component is None or component.copies == 0:
                return None
            keys = [component_key(component.served_by)]
        else:
            keys = [v.name for v in target.variants]
        instances = [i for key in keys for i in target.fleet.instances(key)]
        if not instances:  # a serverless variant scaled to zero starts on the call
            return 0.0 if any(target.fleet.serverless(key) is not None for key in keys) else None
        return sum(i.in_flight for i in instances) / len(instances)


def denied(destination: RouterDestination, router_arn: str) -> Unavailable:
    """Another account's destination whose endpoint policy does not let the caller's account
    invoke it through this router: that destination refuses, as a destination that cannot serve."""
    return Unavailable(f"Destination {destination.arn} denied the request: its endpoint policy does not allow this "
                       f"account to invoke it through inference router {router_arn}.")


def _retryable(exc: EmuError, out: Outcome) -> bool:
    """Failed before a model answered: throttled, no capacity, no instance, or the endpoint
    not there (deleted, not in service). A timeout or the model's own error is not retried."""
    return isinstance(exc, (Throttled, Unavailable, NotServing)) or out.no_capacity or (
        isinstance(exc, InvalidInput) and not out.endpoint_found)
