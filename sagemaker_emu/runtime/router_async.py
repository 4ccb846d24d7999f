"""InvokeInferenceRouterAsync: a request placed on one destination's queue, moved to another
when it has waited there MaxTimeInBacklogSeconds without starting, and given one outcome.

The router answers 202 as soon as the request is on a queue, with the routing target's own S3
locations; every destination writes there (async_queue.Routed). A mover thread waits for the
earliest deadline on the emulator's clock (the backlog limit, or the request's time to live)
and withdraws the request from its queue: withdrawing succeeds only if it has not started, so
a request never moves after it started. Withdrawn, it goes to the best destination not tried
yet; past its time to live, or with every destination tried, it fails: a failure object at the
FailureLocation and one notification on the target's ErrorTopic. When it ran, the target's
SuccessTopic or ErrorTopic hears of it once (the destination's own topics, if it has any, hear
from the destination as for any asynchronous request).

Destinations are preferred as for real-time calls (LocalRegionFirst): the router's Region
first, then the others, each by the requests queued per instance; endpoints scaled to zero
come after those with instances. With InstancePoolOrder the instance type comes first: an
endpoint running instances of its first pool's type before one whose best instances are of its
second, and so on (every destination lists the same pools in the same order, checked when the
router is created), then the Region and the queue as above.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from sagemaker_emu.errors import InvalidInput, Unavailable
from sagemaker_emu.runtime.api import ResultStore, RouterDestination, Routers, RoutingTarget
from sagemaker_emu.runtime.async_queue import (
    Accepted, AsyncInvocations, AsyncRequest, Job, Routed, iso_time, join_location,
)

log = logging.getLogger("sagemaker_emu.router")

DEFAULT_TTL_S = 21600  # RequestTTLSeconds: six hours
DEFAULT_BACKLOG_S = 900  # MaxTimeInBacklogSeconds: fifteen minutes
TTL_PASSED = "The request's time to live ({ttl} s) ran out before a destination started it."
ALL_TRIED = "Every destination of routing target {target} was tried, and none started the request in time."
NONE_LEFT = ("No destination of routing target {target} can take the request: none is serving, or none in "
             "another account allows this one.")


@dataclass(frozen=True)
class RouterAsyncRequest:
    region: str  # the router's
    router: str
    target: str
    input_location: str
    account: str | None = None
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    inference_id: str | None = None
    output_extension: str | None = None
    filename: str | None = None
    ttl_s: int | None = None
    timeout_s: int | None = None


@dataclass
class _Request:
    """One accepted request, at the router, until it has its outcome."""

    req: RouterAsyncRequest
    target: RoutingTarget
    inference_id: str
    output_location: str
    failure_location: str
    notifications: dict[str, Any]
    received: float  # wall time
    expires: float  # monotonic
    backlog_s: float  # wall seconds a destination may keep it waiting
    tried: list[str] = field(default_factory=list)  # destination ARNs, in order
    job: Job | None = None
    over: bool = False


class RouterAsync:
    def __init__(self, asynchronous: AsyncInvocations, routers: Routers, results: ResultStore,
                 wall: Callable[[float], float] = lambda s: s) -> None:
        self.asynchronous = asynchronous
        self.routers = routers
        self.results = results
        self._wall = wall  # service seconds -> wall seconds (the emulator's clock)
        self._lock = threading.Condition()
        # (monotonic deadline, tie, request, the job it was for): an entry whose job is no longer
        # the request's (moved on since) is spent
        self._due: list[tuple[float, int, _Request, Job]] = []
        self._order = itertools.count()
        self._mover: threading.Thread | None = None

    def submit(self, req: RouterAsyncRequest) -> Accepted:
        target = self.routers.routing_target(req.region, req.router, req.target, req.account)
        if target.async_config is None:
            raise InvalidInput(f"Routing target {req.target} of inference router {req.router} is real-time: invoke it "
                               "with InvokeInferenceRouter.")
        output = target.async_config.get("OutputConfig", {})
        inference_id = req.inference_id or str(uuid.uuid4())
        base = output.get("S3OutputPath")
        backlog = target.async_config.get("ClientConfig", {}).get("MaxTimeInBacklogSeconds", DEFAULT_BACKLOG_S)
        request = _Request(
            req=req, target=target, inference_id=inference_id,
            output_location=join_location(base, req.output_extension, req.filename or f"{inference_id}.out"),
            failure_location=join_location(output.get("S3FailurePath") or base, req.output_extension,
                                           f"{inference_id}-error.out"),
            notifications=output.get("NotificationConfig", {}), received=time.time(),
            expires=time.monotonic() + self._wall(req.ttl_s or DEFAULT_TTL_S), backlog_s=self._wall(backlog))
        if not self._place(request):
            raise Unavailable(NONE_LEFT.format(target=req.target))
        return Accepted(inference_id, request.output_location, request.failure_location)

    # ------------------------------------------------------------ placing and moving

    def _place(self, request: _Request) -> bool:
        """Queue the request on the best destination not tried yet; False when none can take it."""
        for destination in self._order_of(request.req.region, request.target.destinations,
                                          request.target.preference == "InstancePoolOrder"):
            if destination.arn in request.tried:
                continue
            request.tried.append(destination.arn)
            req = request.req
            try:
                request.job = self.asynchronous.place(AsyncRequest(
                    endpoint_name=destination.endpoint or "", region=destination.region, account=destination.account,
                    input_location=req.input_location, content_type=req.content_type, accept=req.accept,
                    custom_attributes=req.custom_attributes, inference_id=request.inference_id,
                    timeout_s=req.timeout_s), Routed(request.output_location, request.failure_location, request.expires,
                                                     done=lambda job, why: self._done(request, why),
                                                     left=lambda job: self._left(request, job)))
            except InvalidInput:  # gone, or not asynchronous, since it was ordered: the next one
                continue
            self._schedule(request, request.job, min(time.monotonic() + request.backlog_s, request.expires))
            return True
        return False

    def _order_of(self, region: str, destinations: Sequence[RouterDestination],
                  by_pool: bool = False) -> list[RouterDestination]:
        def rank(d: RouterDestination) -> tuple:
            load = self._load(d)
            if load is None:
                return (True,)
            empty, queued, pool = load
            return (False, pool if by_pool else 0, d.region != region, empty, queued)
        return sorted((d for d in destinations if d.endpoint is not None and d.allowed), key=rank)

    def _load(self, destination: RouterDestination) -> tuple[bool, float, int] | None:
        """(scaled to zero, requests waiting or running per instance, the position of the first
        pool it has instances of); None when not serving."""
        try:
            target = self.asynchronous.directory.serving(destination.region, destination.endpoint or "",
                                                         destination.account)
        except InvalidInput:
            return None
        instances = sum(len(target.fleet.instances(v.name)) for v in target.variants)
        depth = self.asynchronous.depth(target.region, target.name, target.account)
        pools = [n for v in target.variants for n, count in enumerate(target.fleet.pool_counts(v.name).values())
                 if count]
        return instances == 0, (depth["queued"] + depth["running"]) / max(1, instances), min(pools, default=99)

    def _schedule(self, request: _Request, job: Job, when: float) -> None:
        with self._lock:
            heapq.heappush(self._due, (when, next(self._order), request, job))
            if self._mover is None:
                self._mover = threading.Thread(target=self._move, daemon=True, name="router-async-mover")
                self._mover.start()
            self._lock.notify()

    def _move(self) -> None:
        while True:
            with self._lock:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._lock.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _, _, request, job = heapq.heappop(self._due)
            if job is request.job and not request.over and self.asynchronous.withdraw(job):
                self._move_on(request)  # it had not started: never after it did

    def _left(self, request: _Request, job: Job) -> None:
        """The destination went while the request waited there."""
        if job is request.job and not request.over:
            self._move_on(request)

    def _move_on(self, request: _Request) -> None:
        if time.monotonic() >= request.expires:
            self._fail(request, TTL_PASSED.format(ttl=request.req.ttl_s or DEFAULT_TTL_S))
        elif not self._place(request):
            self._fail(request, ALL_TRIED.format(target=request.req.target))

    # ------------------------------------------------------------ outcomes

    def _done(self, request: _Request, reason: str | None) -> None:
        """It ran on a destination (its failure object, if it failed, is written already)."""
        if request.over:
            return
        request.over = True
        served = request.tried[-1]
        if reason is None:
            self._notify(request, "SuccessTopic", "Completed",
                         {"outputLocation": request.output_location, "invokedRoutedResourceArn": served})
        else:
            self._notify(request, "ErrorTopic", "Failed",
                         {"failureLocation": request.failure_location, "invokedRoutedResourceArn": served}, reason)

    def _fail(self, request: _Request, reason: str) -> None:
        if request.over:
            return
        request.over = True
        log.info("inference router %s: async request %s failed: %s", request.req.router, request.inference_id, reason)
        try:
            self.results.write(request.failure_location, reason.encode(), "text/plain")
            self._notify(request, "ErrorTopic", "Failed", {"failureLocation": request.failure_location}, reason)
        except Exception as exc:  # S3 or SNS gone: say so in the log, never kill the mover
            log.warning("inference router %s: the failure of %s could not be written: %s", request.req.router,
                        request.inference_id, exc)

    def _notify(self, request: _Request, topic: str, status: str, response: dict, reason: str | None = None) -> None:
        arn = request.notifications.get(topic)
        if not arn:
            return
        req = request.req
        self.results.notify(arn, {
            "awsRegion": req.region, "eventTime": iso_time(time.time()), "receivedTime": iso_time(request.received),
            "invocationStatus": status, **({"failureReason": reason} if reason is not None else {}),
            "requestParameters": {k: v for k, v in (
                ("inferenceRouterArn", request.target.router_arn), ("routingTargetName", req.target),
                ("inputLocation", req.input_location), ("contentType", req.content_type), ("accept", req.accept),
                ("customAttributes", req.custom_attributes)) if v is not None},
            "responseParameters": response, "inferenceId": request.inference_id, "eventVersion": "1.0",
            "eventSource": "aws:sagemaker", "eventName": "InferenceRouterResult"})
