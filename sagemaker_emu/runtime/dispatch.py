"""The dispatch core: one call to one instance, and the one place a call is recorded.

Every way a request reaches an instance ends here, called as a function: InvokeEndpoint and its
stream, async and serverless calls (runtime/invoke.py's driver), and the front doors to come.
`open` takes a slot on the instance the stages chose, sends the request once and reads the
answer's head; a refused connection (the request never reached the container) returns None so
the driver routes again, and nothing else is retried. The answer is then read whole
(`read_all`) or chunk by chunk (`chunks`), and `finish` closes the exchange exactly once and
records the call, exactly once, whatever happened to it: the metrics, the strategy's bookkeeping
after an answer, and the log line.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from dataclasses import dataclass
from typing import IO, Callable, Generator, TypeVar

from sagemaker_emu.errors import CallerGone, ModelStreamFailure, Throttled
from sagemaker_emu.fleet.api import Connection, InstanceView, Response, Saturated, SlotOutcome
from sagemaker_emu.metrics import Metrics
from sagemaker_emu.runtime import model_errors
from sagemaker_emu.runtime.faults import Faults
from sagemaker_emu.runtime.request import InvokeRequest, Outcome

log = logging.getLogger("sagemaker_emu.runtime")
T = TypeVar("T")

# A model of several containers tells each container's answer in this header (worker/pipeline.py's
# TIMINGS_HEADER, over the instance's HTTP, as it tells everything else); it is not passed on.
CONTAINERS_HEADER = "x-sagemaker-emu-containers"
# How a base's copy learns which adapter to apply (our choice: AWS does not document it).
ADAPTER_HEADER = "X-Amzn-SageMaker-Adapter-Identifier"
_FORWARDED = (("Content-Type", "content_type"), ("Accept", "accept"),
              ("X-Amzn-SageMaker-Custom-Attributes", "custom_attributes"),
              ("X-Amzn-SageMaker-Inference-Id", "inference_id"), ("X-Amzn-SageMaker-Session-Id", "session_id"),
              ("X-Amzn-SageMaker-Target-Model", "target_model"),
              ("X-Amzn-SageMaker-Target-Container-Hostname", "target_container_hostname"))


@dataclass
class Exchange:
    """One call to an instance, open from `open` until `finish`."""

    instance: InstanceView
    slot: contextlib.ExitStack  # holds the in-flight slot on the instance
    result: SlotOutcome
    started: float
    sent: float
    conn: Connection
    head: Response
    concurrency: int = 1  # calls in flight on the instance once this one was sent
    provisioned: int = 0  # a serverless variant's ProvisionedConcurrency
    closed: bool = False

    def close(self) -> None:
        """Give the connection back (or drop it if the answer was not read whole) and the slot."""
        if self.closed:
            return
        self.closed = True
        self.conn.watch = None
        if self.result.failed or not self.conn.at_rest:
            self.conn.close()  # a half-read answer: the instance sees us go
        else:
            self.instance.pool.release(self.conn, reusable=self.head.keep_alive)
        self.slot.close()


class _Unreachable(Exception):
    """The instance refused the connection: the request never reached it."""


class Dispatcher:
    def __init__(self, metrics: Metrics, faults: Faults, model_timeout: float) -> None:
        self.metrics = metrics
        self.faults = faults
        self.model_timeout = model_timeout

    # ------------------------------------------------------------ sending

    def open(self, req: InvokeRequest, out: Outcome, started: float) -> Exchange | None:
        """Take a slot on `out.instance`, send, read the head. None: the request never reached
        it (it began draining, or refused the connection), so route again."""
        instance, target = out.instance, out.target
        assert instance is not None and target is not None, "the stages chose an instance"
        slot = contextlib.ExitStack()
        serverless = target.fleet.serverless(instance.variant)
        limit = serverless.max_concurrency if serverless is not None else None
        try:
            result = slot.enter_context(instance.load.dispatch(limit))  # in flight from here
        except Saturated:
            raise Throttled(f"The endpoint {target.name} is already serving its MaxConcurrency ({limit}) of "
                            "concurrent requests. Retry later, or raise MaxConcurrency.") from None
        if not instance.routable:  # began draining between the pick and now
            result.cancelled = True
            slot.close()
            return None
        concurrency = instance.in_flight  # this call included (ConcurrentRequestsPerModel)
        sent = time.perf_counter()
        try:
            self.faults.on_instance(target.name, out.variant, instance)
            conn, head = self._send(req, out, instance)
        except _Unreachable:  # it died under us: keep it out of routing, use another
            instance.suspect = True
            result.cancelled = True
            slot.close()
            return None
        except BaseException:
            result.failed = True
            slot.close()
            raise
        result.failed = not 200 <= head.status < 300
        return Exchange(instance, slot, result, started, sent, conn, head, concurrency,
                        serverless.provisioned if serverless is not None else 0)

    def _send(self, req: InvokeRequest, out: Outcome, instance: InstanceView) -> tuple[Connection, Response]:
        """Send once. Only a refused connection is known not to have reached the container,
        so only that is tried elsewhere; any later failure is the caller's ModelError."""
        target = out.target
        assert target is not None
        headers = {name: value for name, field in _FORWARDED if (value := getattr(req, field)) is not None}
        if out.adapter is not None:
            headers[ADAPTER_HEADER] = out.adapter
        conn = instance.pool.acquire(req.timeout or self.model_timeout)
        conn.watch = req.caller_gone
        try:
            conn.send("POST", out.path, req.body, headers)
            return conn, conn.read_head()
        except CallerGone:
            conn.close()  # the instance sees us go too, and stops working for nobody
            raise
        except (socket.timeout, TimeoutError):
            conn.close()  # the instance sees us go and is free again
            raise model_errors.timeout(target) from None
        except ConnectionRefusedError:
            conn.close()
            raise _Unreachable() from None
        except OSError:
            conn.close()
            if instance.exited():
                instance.suspect = True  # crashed: no more requests until it is restarted
            raise model_errors.broken(target) from None

    # ------------------------------------------------------------ reading the answer

    def read_all(self, out: Outcome, ex: Exchange) -> bytes:
        """The answer's body, whole."""
        return self._reading(out, ex, lambda: ex.conn.read_body(ex.head))

    def read_into(self, out: Outcome, ex: Exchange, into: IO[bytes], limit: int) -> int:
        """The answer's body written to `into` as it arrives; its length, or past `limit` a
        ModelError (SageMaker's for a body it could not load)."""
        target = out.target
        assert target is not None

        def copy() -> int:
            length = 0
            for piece in ex.conn.iter_body(ex.head, piecewise=True):
                length += len(piece)
                if length > limit:
                    ex.result.failed = True  # the rest is not read: the connection is dropped
                    raise model_errors.model_error(target, 500, None)
                into.write(piece)
            return length

        return self._reading(out, ex, copy)

    def _reading(self, out: Outcome, ex: Exchange, read: Callable[[], T]) -> T:
        """`read` the answer, its failures as the caller's ModelError."""
        target = out.target
        assert target is not None
        try:
            return read()
        except CallerGone:
            ex.result.failed = True
            raise
        except (socket.timeout, TimeoutError):
            ex.result.failed = True
            raise model_errors.timeout(target) from None
        except OSError:
            ex.result.failed = True
            raise model_errors.broken(target) from None

    def chunks(self, req: InvokeRequest, out: Outcome, ex: Exchange) -> Generator[bytes, None, None]:
        """The answer as the container sends it; the call is finished when the last chunk is
        read, the stream fails, or the caller stops reading (closing the generator)."""
        try:
            for chunk in ex.conn.iter_body(ex.head):
                if chunk:
                    yield chunk
        except (socket.timeout, TimeoutError):
            ex.result.failed, out.code = True, "ModelStreamError"
            raise ModelStreamFailure(
                "Your model did not send the next part of its response within the timeout "
                f"({self.model_timeout:g} s).", "ModelInvocationTimeExceeded") from None
        except (CallerGone, GeneratorExit):  # the caller went away mid-stream: stop the model too
            ex.result.failed, out.code = True, "CallerClosedConnection"
            raise
        except OSError:
            ex.result.failed, out.code = True, "ModelStreamError"
            raise ModelStreamFailure("The connection to the model closed before the response was complete.",
                                     "StreamBroken") from None
        finally:
            self.finish(req, out, ex)

    # ------------------------------------------------------------ the end of every call

    def finish(self, req: InvokeRequest, out: Outcome, ex: Exchange | None = None) -> None:
        """Close the exchange, if there was one, and record the call: once, whatever the path."""
        if ex is not None and not ex.closed:
            ex.close()
        if out.model is not None:
            out.model.release()
        if out.recorded:
            return
        out.recorded = True
        self.metrics.recorded(req.endpoint_name if out.endpoint_found else "")
        if ex is not None:
            self._answered(out, ex)
        if out.code is not None:
            if out.no_capacity and out.target is not None:
                self.metrics.no_capacity(out.target.region, out.component or "")
            if out.endpoint_found:  # names that match nothing would grow the series without bound
                self.metrics.failed(req.endpoint_name, out.variant, out.code, out.component)
            if out.code == "CallerClosedConnection":
                log.info("InvokeEndpoint %s variant=%s: the caller hung up; the instance was released",
                         req.endpoint_name, out.variant)

    def _answered(self, out: Outcome, ex: Exchange) -> None:
        """The container answered (any status): SageMaker's invocation metrics."""
        target = out.target
        assert target is not None
        if not ex.result.failed and out.router is not None and out.route is not None:
            out.router.answered(out.route, ex.instance)  # before answering: the next pick sees it
        answered = time.perf_counter()
        self.metrics.invoked(target.name, out.variant, ex.instance.id, model_s=answered - ex.sent,
                             overhead_s=ex.sent - ex.started, component=out.component, status=ex.head.status,
                             instances=out.pool_size, concurrency=ex.concurrency, region=target.region,
                             config=target.deploying_config,
                             instance_type=ex.instance.instance_type if ex.instance.in_pools else None)
        if ex.provisioned:
            self.metrics.provisioned(target.region, target.name, out.variant, ex.concurrency, ex.provisioned)
        timings = ex.head.headers.get(CONTAINERS_HEADER)
        if timings:  # a model of several containers: each one's answer
            self.metrics.containers(target.region, target.name, out.variant, _container_answers(timings),
                                    direct=target.fleet.direct_targets(ex.instance.variant) is not None)
        log.info("InvokeEndpoint %s variant=%s instance=%s status=%d %.1fms",
                 target.name, out.variant, ex.instance.id, ex.head.status, (answered - ex.sent) * 1000)


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
