"""Invocation metrics, exposed at `GET /_emu/metrics` in Prometheus' text format, and handed
as SageMaker's CloudWatch datapoints (namespace AWS/SageMaker, its metric names, dimensions
and units) to a `sink` (the CloudWatch metric store), one batch per invocation.

Latency is split as SageMaker's CloudWatch metrics split it: ModelLatency is the time the
instance took to answer (measured from the emulator, so it includes the loopback hop), and
OverheadLatency is the emulator's own time before it sent the request (endpoint lookup,
variant choice, routing); HTTP parsing in the front door is not included.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict, deque
from typing import Any, Callable, Iterable, Protocol

RECENT = 120  # calls per endpoint the live view's strip shows
BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Histogram:
    __slots__ = ("counts", "total", "count")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS_S) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS_S, seconds)] += 1
        self.total += seconds
        self.count += 1


NAMESPACE = "AWS/SageMaker"
# aws.sagemaker.inference_router.* as Prometheus names them (dots to underscores; counters _total, seconds _seconds)
ROUTER_PREFIX = "aws_sagemaker_inference_router"
Point = tuple[tuple[str, str, tuple[tuple[str, str], ...]], float, str, float]  # cloudwatch.series.Point


class Sink(Protocol):
    """Where CloudWatch's datapoints go (cloudwatch/backend.py's CloudWatch)."""

    def record(self, region: str, points: list[Point]) -> None: ...

    @property
    def invocations(self) -> Any:
        """`add(region, endpoint, variant, component, model_us, overhead_us, status, share,
        concurrency, now)`: one answered invocation, on the fast path."""


def _variant(endpoint: str, variant: str) -> tuple[tuple[str, str], ...]:
    return (("EndpointName", endpoint), ("VariantName", variant))


class Metrics:
    def __init__(self, sink: Sink | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.sink = sink  # CloudWatch's store; None: Prometheus only
        self.wall = wall
        self._lock = threading.Lock()
        self.invocations: dict[tuple, int] = defaultdict(int)  # (endpoint, variant, instance)
        self.model_latency: dict[tuple, Histogram] = defaultdict(Histogram)  # (endpoint, variant)
        self.overhead_latency: dict[tuple, Histogram] = defaultdict(Histogram)
        self.errors: dict[tuple, int] = defaultdict(int)  # (endpoint, variant, code)
        # Calls to inference components: (endpoint, component, copy) and (endpoint, component, code)
        self.component_invocations: dict[tuple, int] = defaultdict(int)
        self.component_errors: dict[tuple, int] = defaultdict(int)
        self.model_setup: dict[tuple, Histogram] = defaultdict(Histogram)  # (endpoint, variant): cold starts
        self.calls: dict[tuple, int] = defaultdict(int)  # (endpoint,): every call recorded, "" if none was found
        self.routed_calls: dict[tuple, int] = defaultdict(int)  # (router, destination ARN, reason)
        # Inference routers, under the names SageMaker publishes them (OpenTelemetry, aws.sagemaker.inference_router.*)
        self.router_invocations: dict[tuple, int] = defaultdict(int)  # (router, target, destination, error type)
        self.router_overhead: dict[tuple, Histogram] = defaultdict(Histogram)  # (router, target)
        self.router_destination: dict[tuple, Histogram] = defaultdict(Histogram)  # (router, target, destination)
        # The last RECENT calls each endpoint's containers answered: which instance or copy took
        # each (the live view's strip, where RANDOM and LEAST_OUTSTANDING_REQUESTS look different)
        self.recent: dict[str, deque[str]] = defaultdict(lambda: deque(maxlen=RECENT))

    def router_answered(self, router: str, target: str, destination: str, reason: str, error_type: str,
                        total_s: float, destination_s: float | None) -> None:
        """A router's final response: the destination it sent the call to last and why, the
        error it ended with ("" for none), and the time of the attempt a destination answered."""
        with self._lock:
            self.routed_calls[(router, destination, reason)] += 1
            self.router_invocations[(router, target, destination, error_type)] += 1
            if destination_s is not None:
                self.router_destination[(router, target, destination)].observe(destination_s)
                self.router_overhead[(router, target)].observe(max(0.0, total_s - destination_s))

    def recorded(self, endpoint: str) -> None:
        """One call, whatever became of it (runtime/dispatch.py's `finish`, once per call)."""
        with self._lock:
            self.calls[(endpoint,)] += 1

    def invoked(self, endpoint: str, variant: str, instance: str, model_s: float, overhead_s: float,
                component: str | None = None, status: int = 200, instances: int = 1, concurrency: int = 1,
                region: str = "us-east-1", config: str | None = None, instance_type: str | None = None) -> None:
        """A call the container answered (any status). `instances`: the variant's (or the
        component's copies) at the time, for InvocationsPerInstance/PerCopy; `concurrency`:
        calls in flight on that instance or copy when this one was sent; `config`: during an
        update, the endpoint config of the fleet that answered; `instance_type`: the answering
        instance's, when its variant has instance pools."""
        with self._lock:
            self.invocations[(endpoint, variant, instance)] += 1
            self.recent[endpoint].append(instance)
            self.model_latency[(endpoint, variant)].observe(model_s)
            self.overhead_latency[(endpoint, variant)].observe(overhead_s)
            if component is not None:
                self.component_invocations[(endpoint, component, instance)] += 1
        if self.sink is not None:  # SageMaker's eight invocation metrics, summed in place per second
            self.sink.invocations.add(region, endpoint, variant, component, model_s * 1e6, overhead_s * 1e6,
                                      status, 1.0 / max(1, instances), concurrency, self.wall(), config,
                                      instance_type)

    def provisioned(self, region: str, endpoint: str, variant: str, concurrency: int, provisioned: int) -> None:
        """A call to a serverless variant with provisioned concurrency: within it, or spilled over."""
        if self.sink is None:
            return
        dims, now = _variant(endpoint, variant), self.wall()
        within = concurrency <= provisioned
        executions = float(min(concurrency, provisioned))
        self.sink.record(region, [
            ((NAMESPACE, "ServerlessProvisionedConcurrencyExecutions", dims), executions, "None", now),
            ((NAMESPACE, "ServerlessProvisionedConcurrencyUtilization", dims), executions / provisioned, "None", now),
            ((NAMESPACE, "ServerlessProvisionedConcurrencyInvocations", dims), float(within), "None", now),
            ((NAMESPACE, "ServerlessProvisionedConcurrencySpilloverInvocations", dims), float(not within), "None", now)])

    def no_capacity(self, region: str, component: str) -> None:
        """A call to an inference component with no copy (NoCapacityInvocationFailures)."""
        if self.sink is not None:
            self.sink.record(region, [((NAMESPACE, "NoCapacityInvocationFailures", (("InferenceComponentName", component),)),
                        1.0, "None", self.wall())])

    def failed(self, endpoint: str, variant: str, code: str, component: str | None = None) -> None:
        with self._lock:
            self.errors[(endpoint, variant, code)] += 1
            if component is not None:
                self.component_errors[(endpoint, component, code)] += 1

    def backlog(self, region: str, endpoint: str, size: int, instances: int, oldest_s: float) -> None:
        """An asynchronous endpoint's queue, sampled (the async backlog metrics)."""
        if self.sink is None:
            return
        dims, now = (("EndpointName", endpoint),), self.wall()
        self.sink.record(region, [((NAMESPACE, "ApproximateBacklogSize", dims), float(size), "None", now),
                           ((NAMESPACE, "ApproximateBacklogSizePerInstance", dims), size / max(1, instances), "None", now),
                           ((NAMESPACE, "ApproximateAgeOfOldestRequest", dims), oldest_s, "Seconds", now),
                           ((NAMESPACE, "HasBacklogWithoutCapacity", dims), float(size > 0 and instances == 0), "None",
                            now)])

    def setup(self, endpoint: str, variant: str, seconds: float, region: str = "us-east-1") -> None:
        """A serverless cold start (SageMaker's ModelSetupTime)."""
        with self._lock:
            self.model_setup[(endpoint, variant)].observe(seconds)
        if self.sink is not None:
            self.sink.record(region, [((NAMESPACE, "ModelSetupTime", _variant(endpoint, variant)), seconds * 1e6, "Microseconds",
                        self.wall())])

    def model_loading(self, region: str, endpoint: str, variant: str, loaded: Any) -> None:
        """A call to a multi-model endpoint (fleet.multi_model.Loaded): ModelCacheHit, and on a
        miss the time spent downloading, unloading others, and loading."""
        if self.sink is None:
            return
        dims, now = _variant(endpoint, variant), self.wall()
        points = [((NAMESPACE, "ModelCacheHit", dims), float(loaded.hit), "None", now)]
        if not loaded.hit:
            points += [((NAMESPACE, name, dims), seconds * 1e6, "Microseconds", now)
                       for name, seconds in (("ModelLoadingWaitTime", loaded.wait_s),
                                             ("ModelDownloadingTime", loaded.download_s),
                                             ("ModelLoadingTime", loaded.load_s))]
        points += [((NAMESPACE, "ModelUnloadingTime", dims), seconds * 1e6, "Microseconds", now)
                   for seconds in loaded.unloads_s]
        self.sink.record(region, points)

    def containers(self, region: str, endpoint: str, variant: str, answers: list[tuple[str, int, float]],
                   direct: bool) -> None:
        """A call to a model of several containers: each container's (hostname, status, seconds)
        as ContainerLatency, and with direct invocation the container's own Invocations and
        4XX/5XX errors, all with the ContainerName dimension."""
        if self.sink is None:
            return
        now, points = self.wall(), []
        for hostname, status, seconds in answers:
            dims = (("ContainerName", hostname),) + _variant(endpoint, variant)  # sorted by name, as the store keeps them
            points.append(((NAMESPACE, "ContainerLatency", dims), seconds * 1e6, "Microseconds", now))
            if direct:
                points += [((NAMESPACE, "Invocations", dims), 1.0, "None", now),
                           ((NAMESPACE, "Invocation4XXErrors", dims), float(400 <= status < 500), "None", now),
                           ((NAMESPACE, "Invocation5XXErrors", dims), float(status >= 500), "None", now)]
        self.sink.record(region, points)

    def _series(self) -> tuple[dict, ...]:
        return (self.invocations, self.model_latency, self.overhead_latency, self.errors,
                self.component_invocations, self.component_errors, self.model_setup, self.calls, *self._routers())

    def _routers(self) -> tuple[dict, ...]:
        """The series keyed by router, not by endpoint."""
        return self.routed_calls, self.router_invocations, self.router_overhead, self.router_destination

    def forget(self, endpoint: str, component: str | None = None) -> None:
        """Drop a deleted endpoint's (or one component's) series, so that create/delete cycles
        do not grow them."""
        with self._lock:
            for series in self._series():
                if any(series is r for r in self._routers()) or (
                        component is not None and series not in (self.component_invocations, self.component_errors)):
                    continue  # a router's counts are keyed by the router, not by an endpoint
                for key in [k for k in series if k[0] == endpoint and (component is None or k[1] == component)]:
                    del series[key]
            if component is None:
                self.recent.pop(endpoint, None)

    def reset(self) -> None:
        with self._lock:
            for series in self._series():
                series.clear()
            self.recent.clear()

    def recent_calls(self, endpoint: str) -> list[str]:
        """The instances (or copies) that answered the endpoint's last calls, oldest first."""
        with self._lock:
            return list(self.recent.get(endpoint, ()))

    def cold_starts(self, endpoint: str) -> dict[str, int]:
        """Serverless cold starts so far, by variant."""
        with self._lock:
            return {variant: h.count for (name, variant), h in self.model_setup.items() if name == endpoint}

    def routed(self) -> list[tuple[str, str, str, int]]:
        """(router, destination, reason, calls) for every router decision counted so far."""
        with self._lock:
            return [(*key, count) for key, count in self.routed_calls.items()]

    def render(self, in_flight: Iterable[tuple[tuple[str, str, str], int]],
               router_states: Iterable[tuple[str, str, str]] = ()) -> str:
        """The text exposition; `in_flight` gives ((endpoint, variant, instance), count) now,
        `router_states` (router, destination, state) as each router sees its destinations now."""
        out: list[str] = []
        with self._lock:
            _counter(out, "sagemaker_emu_calls_total", "Calls to an endpoint, each counted once whatever became of "
                     "it (endpoint \"\" for names that match none).", ("endpoint",), self.calls)
            _counter(out, "sagemaker_emu_router_decisions_total", "Calls an inference router sent to a destination, "
                     "by the reason it gave.", ("router", "destination", "reason"), self.routed_calls)
            _counter(out, "sagemaker_emu_invocations_total", "Invocations answered by an instance.",
                     ("endpoint", "variant", "instance"), self.invocations)
            _counter(out, "sagemaker_emu_invocation_errors_total", "Invocations that failed, by error code.",
                     ("endpoint", "variant", "code"), self.errors)
            _counter(out, "sagemaker_emu_component_invocations_total",
                     "Invocations of an inference component answered by one of its copies.",
                     ("endpoint", "inference_component", "copy"), self.component_invocations)
            _counter(out, "sagemaker_emu_component_errors_total",
                     "Invocations of an inference component that failed, by error code.",
                     ("endpoint", "inference_component", "code"), self.component_errors)
            variant = ("endpoint", "variant")
            _histogram(out, "sagemaker_emu_model_latency_seconds",
                       "Time the instance took to answer (SageMaker's ModelLatency).", variant, self.model_latency)
            _histogram(out, "sagemaker_emu_overhead_latency_seconds",
                       "The emulator's own time on an invocation (SageMaker's OverheadLatency).", variant,
                       self.overhead_latency)
            _histogram(out, "sagemaker_emu_model_setup_seconds",
                       "Time a serverless variant took to start on a call (SageMaker's ModelSetupTime).", variant,
                       self.model_setup)
            _counter(out, f"{ROUTER_PREFIX}_invocations_total", "Requests that got a final response; failed ones "
                     "have an error_type.", ("router", "routing_target", "destination", "error_type"),
                     self.router_invocations)
            _histogram(out, f"{ROUTER_PREFIX}_overhead_duration_seconds", "Time the router adds to a real-time "
                       "request: the total time minus the destination time (failed attempts included).",
                       ("router", "routing_target"), self.router_overhead)
            _histogram(out, f"{ROUTER_PREFIX}_destination_duration_seconds", "Time the destination takes to "
                       "respond to a real-time request, including the model.", ("router", "routing_target",
                                                                                 "destination"),
                       self.router_destination)
        out.append(f"# HELP {ROUTER_PREFIX}_destination_status Health of each destination as the router sees it: "
                   "1 for its current state.")
        out.append(f"# TYPE {ROUTER_PREFIX}_destination_status gauge")
        for labels in sorted(router_states):
            out.append(f"{ROUTER_PREFIX}_destination_status{_labels(('router', 'destination', 'state'), labels)} 1")
        out.append("# HELP sagemaker_emu_in_flight_requests Requests dispatched to an instance and not finished.")
        out.append("# TYPE sagemaker_emu_in_flight_requests gauge")
        for labels, value in in_flight:
            out.append(f"sagemaker_emu_in_flight_requests{_labels(('endpoint', 'variant', 'instance'), labels)} {value}")
        return "\n".join(out) + "\n"


def _labels(names: tuple[str, ...], values: tuple) -> str:
    def esc(v: str) -> str:
        return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{n}="{esc(v)}"' for n, v in zip(names, values)) + "}"


def _counter(out: list[str], name: str, help_text: str, names: tuple[str, ...], values: dict) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} counter")
    for labels, value in sorted(values.items()):
        out.append(f"{name}{_labels(names, labels)} {value}")


def _histogram(out: list[str], name: str, help_text: str, names: tuple[str, ...], values: dict) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} histogram")
    for labels, h in sorted(values.items()):
        cumulative = 0
        for bound, count in zip((*BUCKETS_S, "+Inf"), h.counts):
            cumulative += count
            le = bound if bound == "+Inf" else repr(bound)
            out.append(f"{name}_bucket{_labels((*names, 'le'), (*labels, le))} {cumulative}")
        out.append(f"{name}_sum{_labels(names, labels)} {h.total}")
        out.append(f"{name}_count{_labels(names, labels)} {h.count}")
