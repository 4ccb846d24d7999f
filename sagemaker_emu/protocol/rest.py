"""The runtime's front door: REST-JSON, `POST /endpoints/<name>/invocations`,
`/invocations-response-stream` (answered as an AWS event stream) and `/async-invocations`
(accepted with 202; the answer goes to S3).

Request members travel in headers; they are read as the runtime service model names them
and validated like control-plane input (the code differs: ValidationError here).

This is the invoke path, so it is a plain WSGI handler (served by waitress) placed in front
of the Flask app rather than a Flask view: Flask's per-request dispatch measured 0.36 ms,
about a quarter of the emulator's whole overhead (docs/performance.md). Every other request
goes on to Flask.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from typing import Any, Callable, Generator, Iterable, Iterator


from sagemaker_emu.accounts import Accounts
from sagemaker_emu import errors
from sagemaker_emu.config import Config
from sagemaker_emu.protocol import eventstream
from sagemaker_emu.protocol.context import region_of
from sagemaker_emu.protocol.errors import ROUTER_CODES, internal_runtime_error, request_id, runtime_error
from sagemaker_emu.runtime.async_queue import Accepted, AsyncInvocations, AsyncRequest
from sagemaker_emu.runtime.invoke import MAX_BODY_BYTES, Runtime, body_too_large
from sagemaker_emu.runtime.request import InvokeRequest, Outcome
from sagemaker_emu.runtime.router_async import RouterAsync, RouterAsyncRequest
from sagemaker_emu.runtime.routers import RouterRequest, RouterRuntime
from sagemaker_emu.schemas.validator import validate_input
from sagemaker_emu.service_model import ROUTER_SERVICE, RUNTIME_SERVICE, service_model

log = logging.getLogger("sagemaker_emu.api")

_ROUTE = re.compile(r"^/endpoints/(.*)/(invocations|invocations-response-stream|async-invocations)$")
_ROUTER = re.compile(r"^/inference-routers/([^/]+)/(async-)?invocations$")
MAX_ASYNC_BODY_BYTES = 128000  # InvokeEndpointAsync's inline Body, in the runtime model

# InvokeRequest field -> runtime model member
_FIELDS = {
    "content_type": "ContentType",
    "accept": "Accept",
    "custom_attributes": "CustomAttributes",
    "target_variant": "TargetVariant",
    "target_model": "TargetModel",
    "target_container_hostname": "TargetContainerHostname",
    "inference_id": "InferenceId",
    "inference_component": "InferenceComponentName",
    "session_id": "SessionId",
    "prefix_aware_id": "PrefixAwareId",
}


# AsyncRequest field -> runtime model member
_ASYNC_FIELDS = {
    "content_type": "ContentType",
    "accept": "Accept",
    "custom_attributes": "CustomAttributes",
    "inference_id": "InferenceId",
    "input_location": "InputLocation",
    "output_extension": "S3OutputPathExtension",
    "filename": "Filename",
    "ttl_s": "RequestTTLSeconds",
    "timeout_s": "InvocationTimeoutSeconds",
}


@functools.lru_cache(maxsize=None)
def header_members(operation: str, service: str = RUNTIME_SERVICE) -> dict[str, tuple[str, bool]]:
    """Member name -> (WSGI environ key of its header, whether it is an integer), from the runtime model."""
    shape = service_model(service).operation_model(operation).input_shape
    return {name: ("HTTP_" + m.serialization["name"].upper().replace("-", "_"), m.type_name == "integer")
            for name, m in shape.members.items() if m.serialization.get("location") == "header"}


def _utf8(value: str) -> str:
    """WSGI gives a header's bytes as latin-1 text; botocore sends non-ASCII values (a
    TargetModel `modèle.tar.gz`) as UTF-8."""
    if value.isascii():  # nearly always: nothing to re-read
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def read_params(operation: str, endpoint_name: str, environ: dict, service: str = RUNTIME_SERVICE,
                path: dict[str, Any] | None = None) -> dict[str, Any]:
    """The operation's members from the path (`path`, else EndpointName) and the headers, validated."""
    params: dict[str, Any] = dict(path or {"EndpointName": endpoint_name, "Body": ""})  # a body is checked by size
    for member, (key, integer) in header_members(operation, service).items():
        if key == "HTTP_CONTENT_TYPE":
            key = "CONTENT_TYPE"  # WSGI keeps Content-Type outside the HTTP_ keys
        value = environ.get(key)
        if value is not None:
            text = _utf8(value)
            if integer:
                try:
                    params[member] = int(text)
                except ValueError:
                    raise errors.InvalidInput(f"Value '{text[:64]}' at '{member[0].lower() + member[1:]}' "
                                              "failed to satisfy constraint: Member must be an integer") from None
            else:
                params[member] = text
    validate_input(operation, params, service)
    return params


def read_body(environ: dict) -> bytes:
    """The request body. The HTTP server has already received it whole, de-chunked, and
    checked its framing; CONTENT_LENGTH is what it received. The server's own limit is S3's
    (it serves S3 too), so a body larger than an invocation may be is refused unread."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length > MAX_BODY_BYTES:
        raise errors.InvalidInput(body_too_large())
    return environ["wsgi.input"].read(length) if length else b""


class Streamed:
    """The WSGI body of a stream: `events` made from the runtime's `chunks`. The server closes
    it when the caller leaves, read or not, and closing it always ends the call (a generator
    never started runs no `finally`)."""

    def __init__(self, events: Generator[bytes, None, None], chunks) -> None:
        self._chunks = chunks
        self._events = events

    def __iter__(self) -> Iterator[bytes]:
        return self._events

    def close(self) -> None:
        self._events.close()
        self._chunks.close()


def _framed(chunks, endpoint_name: str) -> Generator[bytes, None, None]:
    """Each chunk from the container as one PayloadPart event, sent as soon as it arrives;
    a failure after the first byte becomes an exception event that boto3 raises mid-iteration."""
    try:
        for chunk in chunks:
            yield eventstream.payload_part(chunk)
    except errors.ModelStreamFailure as exc:
        log.info("InvokeEndpointWithResponseStream %s ModelStreamError %s", endpoint_name, exc.error_code)
        yield eventstream.model_stream_error(exc.message, exc.error_code)
    except errors.CallerGone:
        return
    except Exception:
        log.exception("stream of %s failed", endpoint_name)
        yield eventstream.internal_stream_failure("An internal error occurred while streaming the response.")
    finally:
        chunks.close()


def _code(answer: tuple[str, list, bytes]) -> str:
    """The wire code of an error answer (what the caller sees), for the log line."""
    return next((v for k, v in answer[1] if k == "x-amzn-ErrorType"), "-")


def _where(req: InvokeRequest | None, out: Outcome) -> str:
    """Which instance a failed call was sent to, and the caller's InferenceId, for the log line."""
    if req is None:
        return ""
    return (f" instance={out.sent_to[0]} pid={out.sent_to[1]}" if out.sent_to else "") + \
        (f" inference_id={req.inference_id[:64]}" if req.inference_id else "")


class RuntimeAPI:
    """WSGI: the runtime's routes, else the next app (Flask)."""

    def __init__(self, runtime: Runtime, config: Config, next_app: Callable, asynchronous: AsyncInvocations,
                 routers: RouterRuntime | None = None, accounts: Accounts | None = None,
                 router_async: RouterAsync | None = None) -> None:
        self.routers = routers  # InvokeInferenceRouter
        self.router_async = router_async  # InvokeInferenceRouterAsync
        self.runtime = runtime
        self.config = config
        self.accounts = accounts or Accounts(config.account)  # whose endpoints a call reaches
        self.next_app = next_app
        self.asynchronous = asynchronous

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        match = _ROUTE.match(environ.get("PATH_INFO", ""))
        if match is None or environ["REQUEST_METHOD"] != "POST":
            router = _ROUTER.match(environ.get("PATH_INFO", ""))
            if router is not None and environ["REQUEST_METHOD"] == "POST":  # sagemaker-inference-router-runtime
                if router.group(2):
                    status, headers, body = self.invoke_inference_router_async(router.group(1), environ)
                else:
                    status, headers, body = self.invoke_inference_router(router.group(1), environ)
                start_response(status, headers)
                return [body]
            return self.next_app(environ, start_response)
        name = match.group(1)  # PATH_INFO is already decoded: a second unquote let `rt-ech%256f` invoke `rt-echo`
        if match.group(2) == "invocations-response-stream":
            status, headers, body = self.invoke_with_response_stream(name, environ)
            start_response(status, headers)
            return body
        if match.group(2) == "async-invocations":
            status, headers, body = self.invoke_endpoint_async(name, environ)
        else:
            status, headers, body = self.invoke_endpoint(name, environ)
        start_response(status, headers)
        return [body]

    def _request(self, operation: str, endpoint_name: str, environ: dict, rid: str) -> InvokeRequest:
        params = read_params(operation, endpoint_name, environ)
        members: dict[str, Any] = {f: params.get(m) for f, m in _FIELDS.items()}
        return InvokeRequest(
            endpoint_name=endpoint_name,
            request_id=rid,
            body=read_body(environ),
            region=region_of(environ.get("HTTP_AUTHORIZATION"), self.config.region),
            account=self.accounts.of_authorization(environ.get("HTTP_AUTHORIZATION")),
            caller_gone=environ.get("waitress.client_disconnected"),  # checked while the instance works
            **members,
        )

    def invoke_endpoint(self, endpoint_name: str, environ: dict) -> tuple[str, list, bytes]:
        rid = request_id()
        started = time.perf_counter()
        req, out = None, Outcome()
        try:
            req = self._request("InvokeEndpoint", endpoint_name, environ, rid)
            result = self.runtime.invoke(req, out)
        except errors.CallerGone:  # nobody to answer; the connection is closed below us
            return "499 Client Closed Request", [("Content-Length", "0")], b""  # nobody reads it: the caller is gone
        except errors.EmuError as exc:
            answer = runtime_error(exc, rid)
            log.info("InvokeEndpoint %s %s %s%s %.1fms", endpoint_name, answer[0][:3], _code(answer), _where(req, out),
                     (time.perf_counter() - started) * 1000)
            return answer
        except Exception:
            log.exception("unhandled error in InvokeEndpoint")
            return internal_runtime_error(rid)
        assert isinstance(result.body, bytes), "a synchronous answer is read into memory"
        headers = [("Content-Type", result.content_type), ("Content-Length", str(len(result.body))),
                   ("x-Amzn-Invoked-Production-Variant", result.variant), ("x-amzn-RequestId", rid)]
        for name, value in (("X-Amzn-SageMaker-Custom-Attributes", result.custom_attributes),
                            ("X-Amzn-SageMaker-New-Session-Id", result.new_session_id),
                            ("X-Amzn-SageMaker-Closed-Session-Id", result.closed_session_id)):
            if value is not None:
                headers.append((name, value))
        return "200 OK", headers, result.body

    def invoke_inference_router(self, router: str, environ: dict) -> tuple[str, list, bytes]:
        """InvokeInferenceRouter (sagemaker-inference-router-runtime): runtime/routers.py picks the
        destination and runs the endpoint path for it in process."""
        rid = request_id()
        started = time.perf_counter()
        try:
            if self.routers is None:
                raise errors.NotImplementedOperation("InvokeInferenceRouter")
            target = environ.get("HTTP_X_AMZN_SAGEMAKER_ROUTING_TARGET_NAME")
            if not target:
                raise errors.InvalidInput("1 validation error detected: Value null at 'routingTargetName' failed to "
                                          "satisfy constraint: Member must not be null")
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length > MAX_BODY_BYTES:
                raise errors.PayloadTooLarge(body_too_large())
            if length == 0:
                raise errors.InvalidInput("1 validation error detected: Value at 'body' failed to satisfy "
                                          "constraint: Member must have length greater than or equal to 1")
            routed = self.routers.invoke(RouterRequest(
                region=region_of(environ.get("HTTP_AUTHORIZATION"), self.config.region), router=router, target=target,
                account=self.accounts.of_authorization(environ.get("HTTP_AUTHORIZATION")),
                body=environ["wsgi.input"].read(length), content_type=environ.get("CONTENT_TYPE"),
                accept=environ.get("HTTP_ACCEPT"), custom_attributes=environ.get("HTTP_X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES"),
                inference_id=environ.get("HTTP_X_AMZN_SAGEMAKER_INFERENCE_ID"),
                prefix_aware_id=environ.get("HTTP_X_AMZN_SAGEMAKER_PREFIX_AWARE_ID"),
                caller_gone=environ.get("waitress.client_disconnected"), request_id=rid))
        except errors.CallerGone:
            return "499 Client Closed Request", [("Content-Length", "0")], b""
        except errors.EmuError as exc:
            answer = runtime_error(exc, rid, ROUTER_CODES)
            log.info("InvokeInferenceRouter %s %s %s %.1fms", router, answer[0][:3], _code(answer),
                     (time.perf_counter() - started) * 1000)
            return answer
        except Exception:
            log.exception("unhandled error in InvokeInferenceRouter")
            return internal_runtime_error(rid)
        result = routed.result
        assert isinstance(result.body, bytes), "a synchronous answer is read into memory"
        headers = [("Content-Type", result.content_type), ("Content-Length", str(len(result.body))),
                   ("X-Amzn-SageMaker-Invoked-Routed-Resource-Arn", routed.destination),
                   ("X-Amzn-SageMaker-Invoked-Routing-Reason", routed.reason),
                   ("x-Amzn-Invoked-Production-Variant", result.variant), ("x-amzn-RequestId", rid)]
        if result.custom_attributes is not None:
            headers.append(("X-Amzn-SageMaker-Custom-Attributes", result.custom_attributes))
        return "200 OK", headers, result.body

    def invoke_inference_router_async(self, router: str, environ: dict) -> tuple[str, list, bytes]:
        """InvokeInferenceRouterAsync: runtime/router_async.py queues it on a destination."""
        rid = request_id()
        try:
            if self.router_async is None:
                raise errors.NotImplementedOperation("InvokeInferenceRouterAsync")
            params = read_params("InvokeInferenceRouterAsync", router, environ, ROUTER_SERVICE,
                                 {"InferenceRouterName": router})
            accepted = self.router_async.submit(RouterAsyncRequest(
                region=region_of(environ.get("HTTP_AUTHORIZATION"), self.config.region), router=router,
                target=params["RoutingTargetName"], input_location=params["InputLocation"],
                account=self.accounts.of_authorization(environ.get("HTTP_AUTHORIZATION")),
                **{f: params.get(m) for f, m in _ASYNC_FIELDS.items() if f != "input_location"}))
        except errors.EmuError as exc:
            answer = runtime_error(exc, rid, ROUTER_CODES)
            log.info("InvokeInferenceRouterAsync %s %s %s", router, answer[0][:3], _code(answer))
            return answer
        except Exception:
            log.exception("unhandled error in InvokeInferenceRouterAsync")
            return internal_runtime_error(rid)
        return self._accepted("InvokeInferenceRouterAsync", router, accepted, rid)

    def _accepted(self, operation: str, name: str, accepted: Accepted, rid: str) -> tuple[str, list, bytes]:
        body = json.dumps({"InferenceId": accepted.inference_id}).encode()
        log.info("%s %s 202 inference_id=%s", operation, name, accepted.inference_id[:64])
        return "202 Accepted", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                ("X-Amzn-SageMaker-OutputLocation", accepted.output_location),
                                ("X-Amzn-SageMaker-FailureLocation", accepted.failure_location),
                                ("x-amzn-RequestId", rid)], body

    def invoke_endpoint_async(self, endpoint_name: str, environ: dict) -> tuple[str, list, bytes]:
        rid = request_id()
        try:
            params = read_params("InvokeEndpointAsync", endpoint_name, environ)
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length > MAX_ASYNC_BODY_BYTES:
                raise errors.InvalidInput("1 validation error detected: Value at 'body' failed to satisfy constraint: "
                                          f"Member must have length less than or equal to {MAX_ASYNC_BODY_BYTES}")
            accepted = self.asynchronous.submit(AsyncRequest(
                endpoint_name=endpoint_name, region=region_of(environ.get("HTTP_AUTHORIZATION"), self.config.region),
                account=self.accounts.of_authorization(environ.get("HTTP_AUTHORIZATION")),
                body=environ["wsgi.input"].read(length) if length else None,
                **{f: params.get(m) for f, m in _ASYNC_FIELDS.items()}))
        except errors.EmuError as exc:
            answer = runtime_error(exc, rid)
            log.info("InvokeEndpointAsync %s %s %s", endpoint_name, answer[0][:3], _code(answer))
            return answer
        except Exception:
            log.exception("unhandled error in InvokeEndpointAsync")
            return internal_runtime_error(rid)
        return self._accepted("InvokeEndpointAsync", endpoint_name, accepted, rid)

    def invoke_with_response_stream(self, endpoint_name: str, environ: dict):
        rid = request_id()
        started = time.perf_counter()
        req, out = None, Outcome()
        try:
            req = self._request("InvokeEndpointWithResponseStream", endpoint_name, environ, rid)
            result = self.runtime.stream(req, out)
        except errors.CallerGone:
            return "499 Client Closed Request", [("Content-Length", "0")], [b""]
        except errors.EmuError as exc:  # before the first byte: an ordinary error response
            status, headers, body = runtime_error(exc, rid)
            log.info("InvokeEndpointWithResponseStream %s %s %s%s %.1fms", endpoint_name, status[:3],
                     _code((status, headers, body)), _where(req, out), (time.perf_counter() - started) * 1000)
            return status, headers, [body]
        except Exception:
            log.exception("unhandled error in InvokeEndpointWithResponseStream")
            status, headers, body = internal_runtime_error(rid)
            return status, headers, [body]
        # No Content-Length: the server sends the events with chunked transfer encoding.
        headers = [("Content-Type", "application/vnd.amazon.eventstream"),
                   ("X-Amzn-SageMaker-Content-Type", result.content_type),
                   ("x-Amzn-Invoked-Production-Variant", result.variant), ("x-amzn-RequestId", rid)]
        if result.custom_attributes is not None:
            headers.append(("X-Amzn-SageMaker-Custom-Attributes", result.custom_attributes))
        return "200 OK", headers, Streamed(_framed(result.chunks, endpoint_name), result.chunks)
