"""InvokeEndpoint and InvokeEndpointWithResponseStream as one pipeline of named steps over
an `Exchange`:

    resolve   the endpoint the call reaches (the control plane's Directory)
    route     its variant (weights, TargetVariant or the session's) and the router's instance
    faults    injected latency, throttling or ModelError (/_emu/faults)
    exchange  take a slot on the instance, send once, read the answer's head
    record    metrics, the instance's cache state, the log line, once the answer is done

`invoke` then reads the body whole; `stream` hands it on chunk by chunk. A non-2xx answer is
a ModelError for both, read whole before any event is sent.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from sagemaker_emu.errors import (
    CallerGone, InvalidInput, ModelFailure, ModelStreamFailure, NotServing, Throttled, Unavailable,
)
from sagemaker_emu.fleet.api import (DeploymentFailed, InstanceView, LoadFailed, Loaded, MultiModelView, TargetNotFound,
                                     component_key)
from sagemaker_emu.fleet.container import Connection, Response
from sagemaker_emu.fleet.load import Outcome, Saturated
from sagemaker_emu.metrics import Metrics
from sagemaker_emu.routing.strategies import RouteRequest
from sagemaker_emu.runtime.api import Directory, Target, VariantTarget
from sagemaker_emu.runtime.capture import DataCapture
from sagemaker_emu.runtime.faults import Faults
from sagemaker_emu.runtime.sessions import NEW_SESSION, Session, SessionTable, parse_new_session

log = logging.getLogger("sagemaker_emu.runtime")
# A model of several containers tells each container's answer in this header (worker/pipeline.py's
# TIMINGS_HEADER, over the instance's HTTP, as it tells everything else); it is not passed on.
CONTAINERS_HEADER = "x-sagemaker-emu-containers"

MAX_BODY_BYTES = 6 * 1024 * 1024  # BodyBlob's max in the service model (6 MiB)
DISPATCH_ATTEMPTS = 3  # an instance may leave routing, or a new fleet replace ours, between steps
# How a base's copy learns which adapter to apply (our choice: AWS does not document it).
ADAPTER_HEADER = "X-Amzn-SageMaker-Adapter-Identifier"
NO_COMPONENT_HEADER = ("Inference Component Name header is required for endpoints to which you plan to deploy "
                       "inference components. Please include Inference Component Name header or consider using "
                       "SageMaker models.")
NO_COPIES = ("Inference Component has no capacity to process this request. ApplicationAutoScaling may be "
             "in-progress (if configured) or try to increase the capacity by invoking "
             "UpdateInferenceComponentRuntimeConfig API.")


def body_too_large() -> str:
    """InvokeEndpoint's refusal of a body over MAX_BODY_BYTES (botocore's validation text)."""
    return ("1 validation error detected: Value at 'body' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_BODY_BYTES}")


# Failures before an answer starts, and the code the caller sees for each (for metrics).
_FAILURE_CODES = ((ModelFailure, "ModelError"), (InvalidInput, "ValidationError"),
                  (Unavailable, "ServiceUnavailable"), (Throttled, "ThrottlingException"),
                  (CallerGone, "CallerClosedConnection"))
_COUNTED = tuple(cls for cls, _ in _FAILURE_CODES)


class _Unreachable(Exception):
    """The instance refused the connection: the request never reached it."""


@dataclass
class Exchange:
    """One call to an instance, open from dispatch until `close()`."""

    target: Target
    variant: str
    instance: InstanceView
    outcome: Outcome
    slot: contextlib.ExitStack  # holds the in-flight slot on the instance
    prompt_blocks: tuple[str, ...] | None  # the prompt's KV block hashes, when the router keeps cache state
    started: float
    sent: float
    conn: Connection
    head: Response
    component: str | None = None  # the inference component invoked, for its metrics
    concurrency: int = 1  # calls in flight on the instance once this one was sent
    pool_size: int = 1  # routable instances (or copies) when it was routed
    provisioned: int = 0  # a serverless variant's ProvisionedConcurrency
    model: "ReadyModel | None" = None  # a multi-model endpoint's model, held loaded for this call
    closed: bool = False

    def close(self) -> None:
        """Give the connection back (or drop it if the answer was not read whole) and the slot.
        Safe to call more than once."""
        if self.closed:
            return
        self.closed = True
        self.conn.watch = None
        if self.outcome.failed or not self.conn.at_rest:
            self.conn.close()  # a half-read answer: the instance sees us go
        else:
            self.instance.pool.release(self.conn, reusable=self.head.keep_alive)
        self.slot.close()
        if self.model is not None:
            self.model.release()


@dataclass
class ReadyModel:
    """A multi-model endpoint's model, loaded on an instance and held there for one call."""

    multi: MultiModelView
    instance: InstanceView
    loaded: Loaded
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.multi.done(self.instance, self.loaded)


def _container_answers(header: str) -> list[tuple[str, int, float]]:
    """worker/pipeline.py's TIMINGS_HEADER: `<hostname>=<status>:<seconds>,...`."""
    answers = []
    for part in header.split(","):
        hostname, _, rest = part.rpartition("=")
        status, _, seconds = rest.partition(":")
        try:
            answers.append((hostname, int(status), float(seconds)))
        except ValueError:
            continue  # written by our own worker; a part it did not write is skipped
    return answers


def _no_model_data(url: str, why: str) -> str:
    """SageMaker's text when a TargetModel names nothing under the model's S3 prefix."""
    if url.startswith("s3://"):
        bucket, _, key = url[len("s3://"):].partition("/")
        return (f"Failed to download model data(bucket: {bucket}, key: {key}). Please ensure that there is an "
                "object located at the URL and that the role passed to CreateModel has permissions to download "
                "the model.")
    return f"Failed to download model data: {why}"


class _Chunks:
    """The body of a streamed answer; closing it, read or not, ends the call exactly once."""

    def __init__(self, gen: Iterator[bytes], finish: Callable[[], None]) -> None:
        self._gen = gen
        self._finish = finish

    def __iter__(self) -> "_Chunks":
        return self

    def __next__(self) -> bytes:
        return next(self._gen)

    def close(self) -> None:
        self._gen.close()
        self._finish()  # a generator never started runs no `finally` of its own


@dataclass
class StreamResult:
    content_type: str
    variant: str
    custom_attributes: str | None
    chunks: Iterator[bytes]


@dataclass
class InvokeRequest:
    endpoint_name: str
    body: bytes
    region: str
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
    variant_chosen: str = ""  # set once a variant is chosen, for error metrics
    endpoint_found: bool = False  # failures are counted only for endpoints that exist
    sent_to: tuple[str, int | None] | None = None  # (instance id, pid) last dispatched to, for log lines
    caller_gone: Callable[[], bool] | None = None  # asked while the instance works
    adapter: str | None = None  # set when the component invoked is an adapter served by its base's copies
    component_found: str | None = None  # the component invoked, once it is known to exist
    timeout: float | None = None  # seconds the container has to answer; None: the server's --model-timeout
    pool_size: int = 1  # routable instances (or copies) the call was routed among: InvocationsPerInstance
    request_id: str = ""  # the x-amzn-RequestId of the answer, which some of SageMaker's texts name
    model_path: str = "/invocations"  # the container's route: a multi-model container's /models/<name>/invoke


@dataclass
class InvokeResult:
    body: bytes
    content_type: str
    variant: str
    custom_attributes: str | None = None
    new_session_id: str | None = None  # the container's X-Amzn-SageMaker-New-Session-Id
    closed_session_id: str | None = None


class Runtime:
    def __init__(self, directory: Directory, seed: int | None = None, model_timeout: float = 60.0,
                 metrics: Metrics | None = None, capture: DataCapture | None = None) -> None:
        self.directory = directory
        self.capture = capture  # DataCaptureConfig's sampled records
        self.metrics = metrics or Metrics()
        self.sessions = SessionTable()
        self.faults = Faults(seed)
        self.model_timeout = model_timeout
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()

    def forget(self, endpoint: Target) -> None:
        """An endpoint was deleted: its metrics and sessions go with it."""
        self.metrics.forget(endpoint.name)
        self.sessions.forget((endpoint.arn, endpoint.created))

    def forget_component(self, endpoint_name: str, component: str) -> None:
        """An inference component was deleted: its metric series go with it."""
        self.metrics.forget(endpoint_name, component)

    def reset(self) -> None:
        if self.capture is not None:
            self.capture.discard()
        self.metrics.reset()
        self.sessions.clear()
        self.faults.clear()

    # ------------------------------------------------------------ the two calls

    def invoke(self, req: InvokeRequest) -> InvokeResult:
        """Answer an invocation; failures are counted by code, per variant when one was chosen."""
        with self._counting_failures(req):
            ex = self._open(req)
            try:
                body = self._read_all(ex)
            finally:
                self._finish(ex)
            if len(body) > MAX_BODY_BYTES:
                raise self._model_error(ex.target, 500, None)
            headers = ex.head.headers
            result = InvokeResult(
                body=body,
                content_type=headers.get("content-type", "application/octet-stream"),
                variant=ex.variant,
                custom_attributes=headers.get("x-amzn-sagemaker-custom-attributes"),
                new_session_id=headers.get("x-amzn-sagemaker-new-session-id"),
                closed_session_id=headers.get("x-amzn-sagemaker-closed-session-id"),
            )
            self._track_session(result, ex)
            if ex.target.data_capture is not None and self.capture is not None:
                self.capture.record(ex.target.name, ex.variant, ex.target.data_capture, req.body, req.content_type,
                                    body, result.content_type, req.inference_id)
            return result

    def stream(self, req: InvokeRequest) -> StreamResult:
        """Start a streamed invocation. Errors before the container's first byte raise here;
        later ones come out of `chunks` as ModelStreamFailure. The request stays in flight on
        its instance until the last chunk is read or `chunks` is closed (the caller left)."""
        if req.session_id == NEW_SESSION:
            raise InvalidInput("NEW_SESSION is accepted only by InvokeEndpoint; stream within an open session.")
        with self._counting_failures(req):
            ex = self._open(req)
        headers = ex.head.headers
        return StreamResult(
            content_type=headers.get("content-type", "application/octet-stream"),
            variant=ex.variant,
            custom_attributes=headers.get("x-amzn-sagemaker-custom-attributes"),
            chunks=_Chunks(self._chunks(ex), lambda: self._finish(ex)),
        )

    # ------------------------------------------------------------ the pipeline

    def _open(self, req: InvokeRequest) -> Exchange:
        """resolve, route, faults, exchange; a non-2xx answer is read whole and raised as ModelError."""
        started = time.perf_counter()
        if len(req.body) > MAX_BODY_BYTES:
            raise InvalidInput(body_too_large())
        for _ in range(DISPATCH_ATTEMPTS):
            target = self._resolve(req)
            variant, instance, prompt_blocks = self._route(req, target)
            req.variant_chosen = variant
            if instance is None:
                continue
            req.sent_to = (instance.id, instance.pid)  # formatted only if the call fails
            model = self._ready_model(req, target, instance)
            try:
                self._inject_faults(target, variant)
                ex = self._exchange(req, target, variant, instance, prompt_blocks, started)
            except BaseException:
                if model is not None:
                    model.release()
                raise
            if ex is None:
                if model is not None:
                    model.release()
                continue
            ex.model = model
            if ex.outcome.failed:  # the container answered non-2xx: a ModelError
                try:
                    body = self._read_all(ex)
                finally:
                    self._finish(ex)
                raise self._model_error(target, ex.head.status, body)
            return ex
        raise Unavailable(f"No instance of endpoint {req.endpoint_name} is available to serve the request. Try again later.")

    def _resolve(self, req: InvokeRequest) -> Target:
        """The endpoint the call reaches; headers it cannot honour are refused here."""
        try:
            target = self.directory.serving(req.region, req.endpoint_name)
        except NotServing:
            req.endpoint_found = True
            raise
        if target.green is not None:  # a guarded update is shifting traffic to its new fleet
            share, green = target.green
            with self._rng_lock:
                if self._rng.random() < share:
                    target = green
        req.endpoint_found = True
        multi_model = any(target.fleet.multi_model(v.name) is not None for v in target.variants)
        if req.target_model is not None and not multi_model:
            raise InvalidInput(
                f"Endpoint {target.name} is not a multi-model endpoint and does not support target model header."
            )
        if req.target_model is None and multi_model:
            raise InvalidInput(f"Request {req.request_id} is missing a target model header.")
        self._check_container(req, target)
        if target.hosts_components and req.inference_component is None:
            raise InvalidInput(NO_COMPONENT_HEADER)
        if req.inference_component is not None:
            component = target.components.get(req.inference_component)
            if component is None:
                raise InvalidInput(f"Inference component {req.inference_component} is not hosted on endpoint {target.name}.")
            req.component_found = component.name  # failures from here count for it too
            if component.copies == 0:
                self.metrics.no_capacity(target.region, component.name)
                raise InvalidInput(NO_COPIES)
            if component.served_by != component.name:  # an adapter: its base's copies apply it
                req.adapter = component.name
        return target

    def _check_container(self, req: InvokeRequest, target: Target) -> None:
        """A model of several containers in Direct mode runs the one the call names; other
        endpoints ignore TargetContainerHostname."""
        hostnames = [h for v in target.variants for h in target.fleet.direct_targets(v.name) or ()]
        if not hostnames:
            return
        if req.target_container_hostname is None:
            raise InvalidInput(f"Endpoint {target.name} invokes its containers directly: name one with "
                               f"TargetContainerHostname ({', '.join(sorted(set(hostnames)))}).")
        if req.target_container_hostname not in hostnames:
            raise InvalidInput(f"Endpoint {target.name} has no container with hostname "
                               f"{req.target_container_hostname}.")

    def _route(self, req: InvokeRequest, target: Target) -> tuple[str, InstanceView | None, tuple[str, ...] | None]:
        """The variant, the instance its router picks (None: none routable now), and, when the
        router keeps cache state (KV_AWARE), the prompt's KV blocks as that instance counts them."""
        if req.session_id not in (None, NEW_SESSION):
            variant, instance, route = self._session_target(req, target)
            return variant, instance, () if target.fleet.router(route).wants_cache_state else None
        if req.inference_component is not None:  # among the component's copies, by its variant's strategy
            component = target.components[req.inference_component]
            variant, key = component.variant, component_key(component.served_by)
        else:
            variant = key = self._choose_variant(req, target).name
        instances = target.fleet.instances(key)
        if not instances and target.fleet.serverless(key) is not None:
            instances = self._cold_start(req, target, key)
        if not instances:
            return variant, None, None
        req.pool_size = len(instances)
        multi = target.fleet.multi_model(key)
        if multi is not None:  # a model already loaded somewhere is sent there
            instances = multi.holding(instances, req.target_model) or instances
        router = target.fleet.router(key)
        request = router.prepare(RouteRequest(req.body, req.prefix_aware_id), instances)  # outside the lock
        with self._rng_lock:  # one decision at a time: seeded choices repeat run to run
            chosen = router.pick(request, instances, self._rng)
        if not router.wants_cache_state:
            return variant, chosen, None
        return variant, chosen, (request.prompt_blocks or {}).get(chosen.kv_block_tokens, ())

    def _cold_start(self, req: InvokeRequest, target: Target, variant: str) -> tuple[InstanceView, ...]:
        """A serverless variant scaled to zero: start it within this call (its ModelSetupTime)."""
        try:
            seconds = target.fleet.cold_start(variant)
        except DeploymentFailed as exc:
            raise Unavailable(f"The serverless endpoint {target.name} could not start its model: {exc}"[:1024]) from None
        if seconds is not None:
            log.info("InvokeEndpoint %s variant=%s: cold start took %.2fs", target.name, variant, seconds)
            self.metrics.setup(target.name, variant, seconds, target.region)
        return tuple(target.fleet.instances(variant))

    def _ready_model(self, req: InvokeRequest, target: Target, instance: InstanceView) -> "ReadyModel | None":
        """A multi-model endpoint: load the call's TargetModel on the instance unless it is
        there (the call waits: ModelLoadingWaitTime), and hold it there until the call ends."""
        multi = target.fleet.multi_model(instance.variant)
        if multi is None:
            req.model_path = "/invocations"
            return None
        try:
            loaded = multi.ensure(instance, req.target_model)
        except TargetNotFound as exc:
            raise InvalidInput(_no_model_data(multi.prefix + req.target_model, str(exc))) from None
        except LoadFailed as exc:
            raise self._model_error(target, exc.status, exc.message.encode()) from None
        self.metrics.model_loading(target.region, target.name, instance.variant, loaded)
        if not loaded.hit:
            log.info("InvokeEndpoint %s: loaded %s on %s in %.1fms", target.name, req.target_model, instance.id,
                     loaded.wait_s * 1000)
        req.model_path = f"/models/{loaded.name}/invoke"
        return ReadyModel(multi, instance, loaded)

    def _choose_variant(self, req: InvokeRequest, target: Target) -> VariantTarget:
        variants = target.variants
        if req.target_variant is not None:
            for v in variants:
                if v.name == req.target_variant:
                    return v
            raise InvalidInput(f"Endpoint {target.name} does not have a production variant named {req.target_variant}.")
        weights = [v.weight for v in variants]
        with self._rng_lock:
            return self._rng.choices(variants, weights=weights)[0] if sum(weights) > 0 else variants[0]

    def _inject_faults(self, target: Target, variant: str) -> None:
        injected = self.faults.before_dispatch(target.name, variant)
        if injected is not None:  # an injected ModelError, as if the container had answered it
            raise self._model_error(target, injected.status, injected.message.encode())

    def _exchange(self, req: InvokeRequest, target: Target, variant: str, instance: InstanceView,
                  prompt_blocks: tuple[str, ...] | None, started: float) -> Exchange | None:
        """Take a slot on the instance, send, read the head. None: the request never reached
        it (it began draining, or refused the connection), so route again."""
        slot = contextlib.ExitStack()
        serverless = target.fleet.serverless(instance.variant)
        limit = serverless.max_concurrency if serverless is not None else None
        try:
            outcome = slot.enter_context(instance.load.dispatch(limit))  # in flight from here
        except Saturated:
            raise Throttled(f"The endpoint {target.name} is already serving its MaxConcurrency ({limit}) of "
                            "concurrent requests. Retry later, or raise MaxConcurrency.") from None
        if not instance.routable:  # began draining between the pick and now
            outcome.cancelled = True
            slot.close()
            return None
        concurrency = instance.in_flight  # this call included (ConcurrentRequestsPerModel)
        sent = time.perf_counter()
        try:
            self.faults.on_instance(target.name, variant, instance)
            conn, head = self._send(instance, req, target)
        except _Unreachable:  # it died under us: keep it out of routing, use another
            instance.suspect = True
            outcome.cancelled = True
            slot.close()
            return None
        except BaseException:
            outcome.failed = True
            slot.close()
            raise
        outcome.failed = not 200 <= head.status < 300
        return Exchange(target, variant, instance, outcome, slot, prompt_blocks, started, sent, conn, head,
                        req.component_found, concurrency, req.pool_size,
                        serverless.provisioned if serverless is not None else 0)

    def _finish(self, ex: Exchange) -> None:
        """Close the exchange and record it, once."""
        if not ex.closed:
            ex.close()
            self._record(ex)

    def _record(self, ex: Exchange) -> None:
        if not ex.outcome.failed and ex.prompt_blocks is not None:
            ex.instance.served_prompt(ex.prompt_blocks)  # before answering: the next pick sees it cached
        answered = time.perf_counter()
        self.metrics.invoked(ex.target.name, ex.variant, ex.instance.id, model_s=answered - ex.sent,
                             overhead_s=ex.sent - ex.started, component=ex.component, status=ex.head.status,
                             instances=ex.pool_size,
                             concurrency=ex.concurrency, region=ex.target.region, config=ex.target.deploying_config)
        if ex.provisioned:
            self.metrics.provisioned(ex.target.region, ex.target.name, ex.variant, ex.concurrency, ex.provisioned)
        timings = ex.head.headers.get(CONTAINERS_HEADER)
        if timings:  # a model of several containers: each one's answer
            self.metrics.containers(ex.target.region, ex.target.name, ex.variant, _container_answers(timings),
                                    direct=ex.target.fleet.direct_targets(ex.instance.variant) is not None)
        log.info("InvokeEndpoint %s variant=%s instance=%s status=%d %.1fms",
                 ex.target.name, ex.variant, ex.instance.id, ex.head.status, (answered - ex.sent) * 1000)

    @contextlib.contextmanager
    def _counting_failures(self, req: InvokeRequest) -> Iterator[None]:
        """Count a failed call in the metrics under the code its caller sees."""
        req.variant_chosen = ""
        try:
            yield
        except _COUNTED as exc:
            code = next(code for cls, code in _FAILURE_CODES if isinstance(exc, cls))
            if req.endpoint_found:  # names that match nothing would grow the series without bound
                self.metrics.failed(req.endpoint_name, req.variant_chosen, code, req.component_found)
            if isinstance(exc, CallerGone):
                log.info("InvokeEndpoint %s variant=%s: the caller hung up; the instance was released",
                         req.endpoint_name, req.variant_chosen)
            raise

    # ------------------------------------------------------------ reading the answer

    def _chunks(self, ex: Exchange) -> Iterator[bytes]:
        try:
            for chunk in ex.conn.iter_body(ex.head):
                if chunk:
                    yield chunk
        except (socket.timeout, TimeoutError):
            self._stream_failed(ex, "ModelStreamError")
            raise ModelStreamFailure(
                "Your model did not send the next part of its response within the timeout "
                f"({self.model_timeout:g} s).", "ModelInvocationTimeExceeded") from None
        except (CallerGone, GeneratorExit):  # the caller went away mid-stream: stop the model too
            self._stream_failed(ex, "CallerClosedConnection")
            raise
        except OSError:
            self._stream_failed(ex, "ModelStreamError")
            raise ModelStreamFailure("The connection to the model closed before the response was complete.",
                                     "StreamBroken") from None
        finally:
            self._finish(ex)

    def _stream_failed(self, ex: Exchange, code: str) -> None:
        ex.outcome.failed = True
        self.metrics.failed(ex.target.name, ex.variant, code, ex.component)

    def _read_all(self, ex: Exchange) -> bytes:
        try:
            return ex.conn.read_body(ex.head)
        except CallerGone:
            ex.outcome.failed = True
            raise
        except (socket.timeout, TimeoutError):
            ex.outcome.failed = True
            raise self._timeout(ex.target) from None
        except OSError:
            ex.outcome.failed = True
            raise self._broken(ex.target) from None

    # ------------------------------------------------------------ sessions

    def _session_target(self, req: InvokeRequest, target: Target) -> tuple[str, InstanceView, str]:
        """The variant and instance (or inference-component copy) that hold the caller's
        session, and the fleet key the instance is under."""
        key = (target.arn, target.created)  # a re-created endpoint does not inherit sessions
        session = self.sessions.find(key, target.name, req.session_id, time.time())
        has_variant = any(v.name == session.variant for v in target.variants)
        instances = target.fleet.instances(session.route)
        req.pool_size = len(instances)
        instance = next((i for i in instances if i.id == session.instance_id), None)
        if not has_variant or instance is None:  # the instance that held it is gone
            self.sessions.closed(key, req.session_id)
            raise InvalidInput(f"Session {req.session_id} of endpoint {target.name} was lost with its instance.")
        return session.variant, instance, session.route

    def _track_session(self, result: InvokeResult, ex: Exchange) -> None:
        key = (ex.target.arn, ex.target.created)
        if result.new_session_id:
            parsed = parse_new_session(result.new_session_id)
            if parsed is not None:
                self.sessions.opened(key, parsed[0], Session(ex.variant, ex.instance.id, parsed[1], ex.instance.variant))
        if result.closed_session_id:
            self.sessions.closed(key, result.closed_session_id.strip())

    # ------------------------------------------------------------ the call to the instance

    def _headers(self, req: InvokeRequest) -> dict[str, str]:
        headers = {}
        for name, value in (("Content-Type", req.content_type), ("Accept", req.accept),
                            ("X-Amzn-SageMaker-Custom-Attributes", req.custom_attributes),
                            ("X-Amzn-SageMaker-Inference-Id", req.inference_id),
                            ("X-Amzn-SageMaker-Session-Id", req.session_id),
                            ("X-Amzn-SageMaker-Target-Model", req.target_model),
                            ("X-Amzn-SageMaker-Target-Container-Hostname", req.target_container_hostname),
                            (ADAPTER_HEADER, req.adapter)):
            if value is not None:
                headers[name] = value
        return headers

    def _send(self, instance: InstanceView, req: InvokeRequest, target: Target) -> tuple[Connection, Response]:
        """Send once. Only a refused connection is known not to have reached the container,
        so only that is tried elsewhere; any later failure is the caller's ModelError."""
        conn = instance.pool.acquire(req.timeout or self.model_timeout)
        conn.watch = req.caller_gone
        try:
            conn.send("POST", req.model_path, req.body, self._headers(req))
            return conn, conn.read_head()
        except CallerGone:
            conn.close()  # the instance sees us go too, and stops working for nobody
            raise
        except (socket.timeout, TimeoutError):
            conn.close()  # the instance sees us go and is free again
            raise self._timeout(target) from None
        except ConnectionRefusedError:
            conn.close()
            raise _Unreachable() from None
        except OSError:
            conn.close()
            if instance.exited():
                instance.suspect = True  # crashed: no more requests until it is restarted
            raise self._broken(target) from None

    # ------------------------------------------------------------ ModelError texts

    def _model_error(self, target: Target, status: int, body: bytes | None) -> ModelFailure:
        kind = "client" if 400 <= status < 500 else "server"
        if body is None:
            see, arn = _see_logs(target)
            message = f"Received {kind} error ({status}) from primary and could not load the entire response body. {see}"
            return ModelFailure(message, status, "", arn)
        return _from_primary(target, kind, status, body.decode("utf-8", errors="replace"))

    def _timeout(self, target: Target) -> ModelFailure:
        return _from_primary(target, "server", 0, (
            "Your invocation timed out while waiting for a response from container primary. Review the "
            "latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again."))

    def _broken(self, target: Target) -> ModelFailure:
        return _from_primary(target, "server", 0,
                             "The container closed the connection before it sent a complete response.")


def _see_logs(target: Target) -> tuple[str, str]:
    """The sentence pointing at the endpoint's log group, and that group's ARN."""
    region, account, name = target.region, target.account, target.name
    see = (f"See https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:"
           f"group=/aws/sagemaker/Endpoints/{name} in account {account} for more information.")
    return see, f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{name}"


def _from_primary(target: Target, kind: str, status: int, text: str) -> ModelFailure:
    see, arn = _see_logs(target)
    return ModelFailure(f'Received {kind} error ({status}) from primary with message "{text}". {see}', status, text, arn)
