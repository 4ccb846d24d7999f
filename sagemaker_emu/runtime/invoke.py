"""InvokeEndpoint: find the endpoint, choose a variant, let its router pick an instance, and
make the call to that instance's container over a pooled keep-alive connection."""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from sagemaker_emu.control.resources import Status
from sagemaker_emu.control.store import Backends
from sagemaker_emu.errors import CallerGone, InvalidInput, ModelFailure, ModelStreamFailure, Throttled, Unavailable
from sagemaker_emu.fleet.http1 import Connection, Response
from sagemaker_emu.metrics import Metrics
from sagemaker_emu.routing.strategies import RouteRequest
from sagemaker_emu.runtime.faults import Faults
from sagemaker_emu.runtime.sessions import NEW_SESSION, Session, SessionTable, parse_new_session

log = logging.getLogger("sagemaker_emu.runtime")

MAX_BODY_BYTES = 6 * 1024 * 1024  # BodyBlob's max in the service model (6 MiB)
SERVING = (Status.IN_SERVICE, Status.UPDATING)  # an update keeps the old fleet serving


# Failures before an answer starts, and the code the caller sees for each (for metrics).
_FAILURE_CODES = ((ModelFailure, "ModelError"), (InvalidInput, "ValidationError"),
                  (Unavailable, "ServiceUnavailable"), (Throttled, "ThrottlingException"),
                  (CallerGone, "CallerClosedConnection"))
_COUNTED = tuple(cls for cls, _ in _FAILURE_CODES)


class _Unreachable(Exception):
    """The instance refused the connection: the request never reached it."""


@dataclass
class _Exchange:
    """One call to an instance, open from dispatch until `close()`."""

    backend: object
    ep: object
    fleet: object
    variant: object
    instance: object
    conn: Connection
    head: Response
    outcome: object
    stack: contextlib.ExitStack  # holds the in-flight slot
    session_key: tuple
    started: float
    sent: float
    prompt_blocks: tuple = ()  # the prompt's KV block hashes, when the router computed them
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
        self.stack.close()


class _Chunks:
    """The body of a streamed answer; closing it, read or not, ends the call exactly once."""

    def __init__(self, gen: Iterator[bytes], finish) -> None:
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
    inference_id: str | None = None
    inference_component: str | None = None
    session_id: str | None = None
    prefix_aware_id: str | None = None
    variant_chosen: str = ""  # set once a variant is chosen, for error metrics
    endpoint_found: bool = False  # failures are counted only for endpoints that exist
    sent_to: tuple[str, int | None] | None = None  # (instance id, pid) last dispatched to, for log lines
    caller_gone: Callable[[], bool] | None = None  # asked while the instance works


@dataclass
class InvokeResult:
    body: bytes
    content_type: str
    variant: str
    custom_attributes: str | None = None
    new_session_id: str | None = None  # the container's X-Amzn-SageMaker-New-Session-Id
    closed_session_id: str | None = None


class Runtime:
    def __init__(self, backends: Backends, seed: int | None = None, model_timeout: float = 60.0,
                 metrics: Metrics | None = None) -> None:
        self.backends = backends
        self.metrics = metrics or Metrics()
        self.sessions = SessionTable()
        self.faults = Faults(seed)
        self.model_timeout = model_timeout
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()

    def forget(self, endpoint) -> None:
        """An endpoint was deleted: its metrics and sessions go with it."""
        self.metrics.forget(endpoint.name)
        self.sessions.forget((endpoint.arn, endpoint.created))

    def reset(self) -> None:
        self.metrics.reset()
        self.sessions.clear()
        self.faults.clear()

    # ------------------------------------------------------------ choosing

    def _serving(self, req: InvokeRequest):
        backend = self.backends(req.region)
        account = backend.account
        with backend.lock:
            ep = backend.endpoints.get(req.endpoint_name.lower())
            if ep is None or ep.name != req.endpoint_name:  # invoke matches the name's case exactly
                raise InvalidInput(f"Endpoint {req.endpoint_name} of account {account} not found.")
            req.endpoint_found = True
            if ep.status not in SERVING or ep.fleet is None:
                raise InvalidInput(
                    f"Endpoint {ep.name} of account {account} is not in service (status: {ep.status.value})."
                )
            return backend, ep, ep.fleet, list(ep.variants)

    def _choose_variant(self, req: InvokeRequest, ep, variants):
        if req.target_variant is not None:
            for v in variants:
                if v.name == req.target_variant:
                    return v
            raise InvalidInput(f"Endpoint {ep.name} does not have a production variant named {req.target_variant}.")
        weights = [v.weight for v in variants]
        with self._rng_lock:
            return self._rng.choices(variants, weights=weights)[0] if sum(weights) > 0 else variants[0]

    def _pick(self, req: InvokeRequest, fleet, variant: str) -> tuple[object | None, tuple]:
        """The instance the variant's router picks, and the prompt's KV blocks if it hashed them."""
        instances = fleet.instances(variant)
        if not instances:
            return None, ()
        router = fleet.router(variant)
        request = router.prepare(RouteRequest(req.body, req.prefix_aware_id), instances)  # outside the lock
        with self._rng_lock:  # one decision at a time: seeded choices repeat run to run
            chosen = router.pick(request, instances, self._rng)
        if request.prompt_blocks is None:  # not KV_AWARE
            return chosen, ()
        return chosen, request.prompt_blocks.get(chosen.kv_block_tokens, ())  # as its cache counts blocks

    # ------------------------------------------------------------ invoking

    def invoke(self, req: InvokeRequest) -> InvokeResult:
        """Answer an invocation; failures are counted by code, per variant when one was chosen."""
        with self._counting_failures(req):
            ex = self._open(req)
            try:
                body = self._read_all(ex, req)
            finally:
                self._finish(ex)
            if ex.outcome.failed:
                raise self._model_error(ex.backend, ex.ep.name, ex.head.status, body)
            if len(body) > MAX_BODY_BYTES:
                raise self._model_error(ex.backend, ex.ep.name, 500, None)
            headers = ex.head.headers
            result = InvokeResult(
                body=body,
                content_type=headers.get("content-type", "application/octet-stream"),
                variant=ex.variant.name,
                custom_attributes=headers.get("x-amzn-sagemaker-custom-attributes"),
                new_session_id=headers.get("x-amzn-sagemaker-new-session-id"),
                closed_session_id=headers.get("x-amzn-sagemaker-closed-session-id"),
            )
            self._track_session(result, ex.session_key, ex.variant.name, ex.instance.id)
            return result

    def stream(self, req: InvokeRequest) -> StreamResult:
        """Start a streamed invocation. Errors before the container's first byte raise here;
        later ones come out of `chunks` as ModelStreamFailure. The request stays in flight on
        its instance until the last chunk is read or `chunks` is closed (the caller left)."""
        if req.session_id == NEW_SESSION:
            raise InvalidInput("NEW_SESSION is accepted only by InvokeEndpoint; stream within an open session.")
        with self._counting_failures(req):
            ex = self._open(req)
            if ex.outcome.failed:  # non-2xx: an ordinary ModelError, before any event is sent
                try:
                    body = self._read_all(ex, req)
                finally:
                    self._finish(ex)
                raise self._model_error(ex.backend, ex.ep.name, ex.head.status, body)
        headers = ex.head.headers
        return StreamResult(
            content_type=headers.get("content-type", "application/octet-stream"),
            variant=ex.variant.name,
            custom_attributes=headers.get("x-amzn-sagemaker-custom-attributes"),
            chunks=_Chunks(self._chunks(ex, req), lambda: self._finish(ex)),
        )

    def _chunks(self, ex: "_Exchange", req: InvokeRequest) -> Iterator[bytes]:
        try:
            for chunk in ex.conn.iter_body(ex.head):
                if chunk:
                    yield chunk
        except (socket.timeout, TimeoutError):
            ex.outcome.failed = True
            self.metrics.failed(ex.ep.name, ex.variant.name, "ModelStreamError")
            raise ModelStreamFailure(
                "Your model did not send the next part of its response within the timeout "
                f"({self.model_timeout:g} s).", "ModelInvocationTimeExceeded") from None
        except CallerGone:
            ex.outcome.failed = True
            self.metrics.failed(ex.ep.name, ex.variant.name, "CallerClosedConnection")
            raise
        except OSError:
            ex.outcome.failed = True
            self.metrics.failed(ex.ep.name, ex.variant.name, "ModelStreamError")
            raise ModelStreamFailure("The connection to the model closed before the response was complete.",
                                     "StreamBroken") from None
        except GeneratorExit:  # the caller went away mid-stream: stop the model too
            ex.outcome.failed = True
            self.metrics.failed(ex.ep.name, ex.variant.name, "CallerClosedConnection")
            raise
        finally:
            self._finish(ex)

    def _finish(self, ex: "_Exchange") -> None:
        if not ex.closed:
            ex.close()
            self._answered(ex)

    @contextlib.contextmanager
    def _counting_failures(self, req: InvokeRequest) -> Iterator[None]:
        """Count a failed call in the metrics under the code its caller sees."""
        req.variant_chosen = ""
        try:
            yield
        except _COUNTED as exc:
            code = next(code for cls, code in _FAILURE_CODES if isinstance(exc, cls))
            if req.endpoint_found:  # names that match nothing would grow the series without bound
                self.metrics.failed(req.endpoint_name, req.variant_chosen, code)
            if isinstance(exc, CallerGone):
                log.info("InvokeEndpoint %s variant=%s: the caller hung up; the instance was released",
                         req.endpoint_name, req.variant_chosen)
            raise

    def _open(self, req: InvokeRequest) -> "_Exchange":
        """Choose a variant and instance, dispatch to it, send, and read the response head."""
        started = time.perf_counter()
        if len(req.body) > MAX_BODY_BYTES:
            raise InvalidInput("1 validation error detected: Value at 'body' failed to satisfy constraint: "
                               f"Member must have length less than or equal to {MAX_BODY_BYTES}")
        for _ in range(3):  # a new fleet may have replaced the one we looked at (UpdateEndpoint)
            backend, ep, fleet, variants = self._serving(req)
            if req.target_model is not None:
                raise InvalidInput(
                    f"Endpoint {ep.name} is not a multi-model endpoint and does not support target model header."
                )
            if req.inference_component is not None:
                raise InvalidInput(f"Inference component {req.inference_component} is not hosted on endpoint {ep.name}.")
            session_key = (ep.arn, ep.created)  # a re-created endpoint does not inherit sessions
            prompt_blocks: tuple = ()
            if req.session_id not in (None, NEW_SESSION):
                variant, instance = self._session_target(req, ep, session_key, variants, fleet)
            else:
                variant = self._choose_variant(req, ep, variants)
                instance, prompt_blocks = self._pick(req, fleet, variant.name)
            req.variant_chosen = variant.name
            if instance is None:
                continue
            req.sent_to = (instance.id, instance.pid)  # formatted only if the call fails
            injected = self.faults.before_dispatch(ep.name, variant.name)
            if injected is not None:  # an injected ModelError, as if the container had answered it
                raise self._model_error(backend, ep.name, injected.status, injected.message.encode())
            stack = contextlib.ExitStack()
            outcome = stack.enter_context(instance.load.dispatch())  # in flight from here
            if not instance.routable:  # began draining between the pick and now: pick again
                outcome.cancelled = True
                stack.close()
                continue
            sent = time.perf_counter()
            try:
                self.faults.on_instance(ep.name, variant.name, instance)
                conn, head = self._send(instance, req)
            except _Unreachable:  # it died under us: keep it out of routing, use another
                instance.suspect = True
                outcome.cancelled = True
                stack.close()
                continue
            except BaseException:
                outcome.failed = True
                stack.close()
                raise
            outcome.failed = not 200 <= head.status < 300
            return _Exchange(backend, ep, fleet, variant, instance, conn, head, outcome, stack,
                             session_key, started, sent, prompt_blocks)
        raise Unavailable(f"No instance of endpoint {req.endpoint_name} is available to serve the request. Try again later.")

    def _answered(self, ex: "_Exchange") -> None:
        if not ex.outcome.failed and ex.fleet.router(ex.variant.name).wants_cache_state:
            ex.instance.served_prompt(ex.prompt_blocks)  # before answering: the next pick sees it cached
        answered = time.perf_counter()
        self.metrics.invoked(ex.ep.name, ex.variant.name, ex.instance.id,
                             model_s=answered - ex.sent, overhead_s=ex.sent - ex.started)
        log.info("InvokeEndpoint %s variant=%s instance=%s status=%d %.1fms",
                 ex.ep.name, ex.variant.name, ex.instance.id, ex.head.status, (answered - ex.sent) * 1000)

    def _session_target(self, req: InvokeRequest, ep, session_key, variants, fleet):
        session = self.sessions.find(session_key, ep.name, req.session_id, time.time())
        variant = next((v for v in variants if v.name == session.variant), None)
        instance = next((i for i in fleet.instances(session.variant) if i.instance_id == session.instance_id), None)
        if variant is None or instance is None:  # the instance that held it is gone
            self.sessions.closed(session_key, req.session_id)
            raise InvalidInput(f"Session {req.session_id} of endpoint {ep.name} was lost with its instance.")
        return variant, instance

    def _track_session(self, result: InvokeResult, session_key, variant: str, instance_id: str) -> None:
        if result.new_session_id:
            parsed = parse_new_session(result.new_session_id)
            if parsed is not None:
                self.sessions.opened(session_key, parsed[0], Session(variant, instance_id, parsed[1]))
        if result.closed_session_id:
            self.sessions.closed(session_key, result.closed_session_id.strip())

    def _headers(self, req: InvokeRequest) -> dict[str, str]:
        headers = {}
        for name, value in (("Content-Type", req.content_type), ("Accept", req.accept),
                            ("X-Amzn-SageMaker-Custom-Attributes", req.custom_attributes),
                            ("X-Amzn-SageMaker-Inference-Id", req.inference_id),
                            ("X-Amzn-SageMaker-Session-Id", req.session_id)):
            if value is not None:
                headers[name] = value
        return headers

    def _send(self, instance, req: InvokeRequest) -> tuple[Connection, Response]:
        """Send once. Only a refused connection is known not to have reached the container,
        so only that is tried elsewhere; any later failure is the caller's ModelError."""
        conn = instance.pool.acquire(self.model_timeout)
        conn.watch = req.caller_gone
        try:
            conn.send("POST", "/invocations", req.body, self._headers(req))
            return conn, conn.read_head()
        except CallerGone:
            conn.close()  # the instance sees us go too, and stops working for nobody
            raise
        except (socket.timeout, TimeoutError):
            conn.close()  # the instance sees us go and is free again
            raise self._timeout(req) from None
        except ConnectionRefusedError:
            conn.close()
            raise _Unreachable() from None
        except OSError:
            conn.close()
            if instance.exited():
                instance.suspect = True  # crashed: no more requests until it is restarted
            raise self._broken(req) from None

    def _read_all(self, ex: "_Exchange", req: InvokeRequest) -> bytes:
        try:
            return ex.conn.read_body(ex.head)
        except CallerGone:
            ex.outcome.failed = True
            raise
        except (socket.timeout, TimeoutError):
            ex.outcome.failed = True
            raise self._timeout(req) from None
        except OSError:
            ex.outcome.failed = True
            raise self._broken(req) from None

    # ------------------------------------------------------------ ModelError texts

    def _see_logs(self, backend, endpoint: str) -> tuple[str, str]:
        region, account = backend.region, backend.account
        see = (f"See https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:"
               f"group=/aws/sagemaker/Endpoints/{endpoint} in account {account} for more information.")
        arn = f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{endpoint}"
        return see, arn

    def _model_error(self, backend, endpoint: str, status: int, body: bytes | None) -> ModelFailure:
        see, arn = self._see_logs(backend, endpoint)
        kind = "client" if 400 <= status < 500 else "server"
        if body is None:
            message = f"Received {kind} error ({status}) from primary and could not load the entire response body. {see}"
            return ModelFailure(message, status, "", arn)
        text = body.decode("utf-8", errors="replace")
        return ModelFailure(f'Received {kind} error ({status}) from primary with message "{text}". {see}', status, text, arn)

    def _timeout(self, req: InvokeRequest) -> ModelFailure:
        backend = self.backends(req.region)
        text = ("Your invocation timed out while waiting for a response from container primary. Review the "
                "latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again.")
        see, arn = self._see_logs(backend, req.endpoint_name)
        return ModelFailure(f'Received server error (0) from primary with message "{text}". {see}', 0, text, arn)

    def _broken(self, req: InvokeRequest) -> ModelFailure:
        backend = self.backends(req.region)
        text = "The container closed the connection before it sent a complete response."
        see, arn = self._see_logs(backend, req.endpoint_name)
        return ModelFailure(f'Received server error (0) from primary with message "{text}". {see}', 0, text, arn)
