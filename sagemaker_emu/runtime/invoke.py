"""InvokeEndpoint and InvokeEndpointWithResponseStream: the endpoint path's stages
(runtime/stages.py), then the dispatch core (runtime/dispatch.py), run by one driver.

    resolve, headers, component, session, variant, candidates, pick, multi-model, faults
        -> open (slot, send once, head) -> read whole, or chunk by chunk -> finish (record)

A refused connection or an instance that left routing sends the call down the path again (at
most DISPATCH_ATTEMPTS times); a non-2xx answer is a ModelError for both calls, read whole
before any event is sent. Every call is recorded once, by the core's `finish`, with the code
its caller sees when it failed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Generator

from sagemaker_emu.errors import CallerGone, InvalidInput, ModelFailure, Throttled, Unavailable
from sagemaker_emu.bodies import Body, FileBody, body_length
from sagemaker_emu.metrics import Metrics
from sagemaker_emu.runtime import model_errors
from sagemaker_emu.runtime.api import Directory, Target
from sagemaker_emu.runtime.capture import DataCapture
from sagemaker_emu.runtime.dispatch import Dispatcher, Exchange
from sagemaker_emu.runtime.faults import Faults
from sagemaker_emu.runtime.request import InvokeRequest, InvokeResult, Outcome, StreamResult
from sagemaker_emu.runtime.sessions import NEW_SESSION, Session, SessionTable, parse_new_session
from sagemaker_emu.runtime.stages import Dice, Stages

log = logging.getLogger("sagemaker_emu.runtime")

MAX_BODY_BYTES = 6 * 1024 * 1024  # BodyBlob's max in the service model (6 MiB)
MAX_FILE_ANSWER_BYTES = 1024 ** 3  # an asynchronous answer: SageMaker's asynchronous payloads reach 1 GB
DISPATCH_ATTEMPTS = 3  # an instance may leave routing, or a new fleet replace ours, between steps


def body_too_large() -> str:
    """InvokeEndpoint's refusal of a body over MAX_BODY_BYTES (botocore's validation text)."""
    return ("1 validation error detected: Value at 'body' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_BODY_BYTES}")


# Failures, and the code the caller sees for each (for metrics).
_FAILURE_CODES = ((ModelFailure, "ModelError"), (InvalidInput, "ValidationError"),
                  (Unavailable, "ServiceUnavailable"), (Throttled, "ThrottlingException"),
                  (CallerGone, "CallerClosedConnection"))
_COUNTED = tuple(cls for cls, _ in _FAILURE_CODES)


def _code(exc: BaseException) -> str:
    return next(code for cls, code in _FAILURE_CODES if isinstance(exc, cls))


class _Chunks:
    """The body of a streamed answer; closing it, read or not, ends the call exactly once."""

    def __init__(self, gen: Generator[bytes, None, None], finish: Callable[[], None]) -> None:
        self._gen = gen
        self._finish = finish

    def __iter__(self) -> "_Chunks":
        return self

    def __next__(self) -> bytes:
        return next(self._gen)

    def close(self) -> None:
        self._gen.close()
        self._finish()  # a generator never started runs no `finally` of its own


class Runtime:
    def __init__(self, directory: Directory, seed: int | None = None, model_timeout: float = 60.0,
                 metrics: Metrics | None = None, capture: DataCapture | None = None) -> None:
        self.directory = directory
        self.capture = capture  # DataCaptureConfig's sampled records
        self.metrics = metrics or Metrics()
        self.sessions = SessionTable()
        self.faults = Faults(seed)
        self.model_timeout = model_timeout
        self.dice = Dice(seed)
        self.stages = Stages(directory, self.metrics, self.sessions, self.faults, self.dice)
        self.dispatch = Dispatcher(self.metrics, self.faults, model_timeout)
        self.path = self.stages.path()

    def forget(self, endpoint: Target) -> None:
        """An endpoint was deleted: its metrics, sessions and generator go with it."""
        self.metrics.forget(endpoint.name)
        self.sessions.forget((endpoint.arn, endpoint.created))
        self.dice.forget(endpoint.region, endpoint.name)

    def forget_component(self, endpoint_name: str, component: str) -> None:
        """An inference component was deleted: its metric series go with it."""
        self.metrics.forget(endpoint_name, component)

    def reset(self) -> None:
        if self.capture is not None:
            self.capture.discard()
        self.metrics.reset()
        self.sessions.clear()
        self.faults.clear()
        self.dice.clear()

    # ------------------------------------------------------------ the two calls

    def invoke(self, req: InvokeRequest, out: Outcome | None = None, answer_to: Path | None = None) -> InvokeResult:
        """Answer an invocation. `out`: the caller's, to read where the call went; `answer_to`:
        a file the answer is written to as it arrives, up to MAX_FILE_ANSWER_BYTES (an
        asynchronous call's), the result's body then naming it."""
        out = out if out is not None else Outcome()
        ex = None
        try:
            ex = self._open(req, out)
            body: Body
            if answer_to is None:
                body = self.dispatch.read_all(out, ex)
                if len(body) > MAX_BODY_BYTES:
                    raise model_errors.model_error(_target_of(out), 500, None)
            else:
                with open(answer_to, "wb") as f:
                    body = FileBody(answer_to, self.dispatch.read_into(out, ex, f, MAX_FILE_ANSWER_BYTES))
            headers = ex.head.headers
            result = InvokeResult(
                body=body,
                content_type=headers.get("content-type", "application/octet-stream"),
                variant=out.variant,
                custom_attributes=headers.get("x-amzn-sagemaker-custom-attributes"),
                new_session_id=headers.get("x-amzn-sagemaker-new-session-id"),
                closed_session_id=headers.get("x-amzn-sagemaker-closed-session-id"),
            )
        except _COUNTED as exc:
            out.code = _code(exc)
            raise
        finally:
            self.dispatch.finish(req, out, ex)
        self._track_session(result, out, ex)
        target = _target_of(out)
        if target.data_capture is not None and self.capture is not None:
            captured, answered = _capturable(req.body), _capturable(result.body)
            if captured is not None and answered is not None:  # an asynchronous body over 6 MiB is not
                self.capture.record(target.name, out.variant, target.data_capture, captured, req.content_type,
                                    answered, result.content_type, req.inference_id)
        return result

    def stream(self, req: InvokeRequest, out: Outcome | None = None) -> StreamResult:
        """Start a streamed invocation. Errors before the container's first byte raise here;
        later ones come out of `chunks` as ModelStreamFailure. The request stays in flight on
        its instance until the last chunk is read or `chunks` is closed (the caller left)."""
        out = out if out is not None else Outcome()
        try:
            if req.session_id == NEW_SESSION:
                raise InvalidInput("NEW_SESSION is accepted only by InvokeEndpoint; stream within an open session.")
            ex = self._open(req, out)
        except BaseException as exc:
            if isinstance(exc, _COUNTED):
                out.code = _code(exc)
            self.dispatch.finish(req, out)
            raise
        headers = ex.head.headers
        return StreamResult(
            content_type=headers.get("content-type", "application/octet-stream"),
            variant=out.variant,
            custom_attributes=headers.get("x-amzn-sagemaker-custom-attributes"),
            chunks=_Chunks(self.dispatch.chunks(req, out, ex), lambda: self.dispatch.finish(req, out, ex)),
        )

    # ------------------------------------------------------------ the driver

    def _open(self, req: InvokeRequest, out: Outcome) -> Exchange:
        """The stages, then the core's `open`; a non-2xx answer is read whole and raised as a
        ModelError (the call finished and recorded)."""
        started = time.perf_counter()
        if not isinstance(req.body, FileBody) and body_length(req.body) > MAX_BODY_BYTES:
            raise InvalidInput(body_too_large())
        for _ in range(DISPATCH_ATTEMPTS):
            out.next_attempt()
            if any(stage(req, out) is False for stage in self.path) or out.instance is None:
                continue
            ex = self.dispatch.open(req, out, started)
            if ex is None:
                continue
            if ex.result.failed:  # the container answered non-2xx: a ModelError
                out.code = "ModelError"
                try:
                    body = self.dispatch.read_all(out, ex)
                finally:
                    self.dispatch.finish(req, out, ex)
                raise model_errors.model_error(_target_of(out), ex.head.status, body)
            return ex
        raise Unavailable(f"No instance of endpoint {req.endpoint_name} is available to serve the request. Try again later.")

    def _track_session(self, result: InvokeResult, out: Outcome, ex: Exchange) -> None:
        target = _target_of(out)
        key = (target.arn, target.created)
        if result.new_session_id:
            parsed = parse_new_session(result.new_session_id)
            if parsed is not None:
                self.sessions.opened(key, parsed[0], Session(out.variant, ex.instance.id, parsed[1], ex.instance.variant))
        if result.closed_session_id:
            self.sessions.closed(key, result.closed_session_id.strip())


def _capturable(body: Body) -> bytes | None:
    if not isinstance(body, FileBody):
        return body
    return body.head(MAX_BODY_BYTES) if body.length <= MAX_BODY_BYTES else None


def _target_of(out: Outcome) -> Target:
    assert out.target is not None
    return out.target
