"""SageMaker's OpenAI-compatible path, a front door beside InvokeEndpoint:

    POST /endpoints/<endpoint>/openai/v1/chat/completions
    POST /endpoints/<endpoint>/inference-components/<component>/openai/v1/chat/completions

The body goes to the container's `/v1/chat/completions` unchanged, through the same stages and
dispatch core as InvokeEndpoint (routing, sessions, faults, capture, metrics); with
`"stream": true` the container's server-sent events are passed through as they come (no
AWS event-stream framing). Callers authenticate with a bearer token (protocol/bearer.py) or
SigV4. The emulator's own refusals answer in OpenAI's error envelope
`{"error": {"message", "type", "code"}}` (docs/decisions.md), so OpenAI clients raise their
usual exceptions.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any, Callable, Generator, Iterable

from sagemaker_emu.accounts import Accounts
from sagemaker_emu import errors
from sagemaker_emu.config import Config
from sagemaker_emu.protocol import bearer
from sagemaker_emu.protocol.context import region_of
from sagemaker_emu.protocol.errors import request_id
from sagemaker_emu.protocol.rest import Streamed
from sagemaker_emu.runtime.invoke import MAX_BODY_BYTES, Runtime, body_too_large
from sagemaker_emu.runtime.request import InvokeRequest, Outcome

log = logging.getLogger("sagemaker_emu.api")

ROUTE = re.compile(r"^/endpoints/([^/]+)(?:/inference-components/([^/]+))?/openai/v1/chat/completions$")
# Failures, the status and OpenAI error type each answers with, and the code SageMaker names.
_KINDS: tuple[tuple[type, int, str, str], ...] = (
    (errors.Throttled, 429, "rate_limit_error", "ThrottlingException"),
    (errors.Unavailable, 503, "service_unavailable_error", "ServiceUnavailable"),
    (errors.InvalidInput, 400, "invalid_request_error", "ValidationError"),
)


def is_openai_path(path: str) -> bool:
    return ROUTE.match(path) is not None


def error(status: int, kind: str, code: str, message: str, rid: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """An answer in OpenAI's error envelope."""
    body = json.dumps({"error": {"message": message, "type": kind, "code": code}}).encode()
    return (f"{status} {_REASONS.get(status, 'Error')}", [("Content-Type", "application/json"),
                                                          ("Content-Length", str(len(body))),
                                                          ("x-amzn-RequestId", rid), ("x-amzn-ErrorType", code)], body)


_REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 424: "Failed Dependency",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


def failure(exc: errors.EmuError, rid: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """The emulator's refusal, or a model's error, in OpenAI's envelope. A container's own 4xx
    keeps its status (OpenAI clients raise BadRequestError and the like for it); any other
    model failure is SageMaker's ModelError status, 424."""
    if isinstance(exc, errors.ModelFailure):
        status = exc.original_status if 400 <= exc.original_status < 500 else 424
        return error(status, "model_error", "ModelError", exc.message, rid)
    for cls, status, kind, code in _KINDS:
        if isinstance(exc, cls):
            return error(status, kind, code, exc.message, rid)
    return error(500, "internal_error", "InternalFailure", "An internal error occurred.", rid)


class OpenAIAPI:
    """WSGI: the OpenAI-compatible routes, else the next app."""

    def __init__(self, runtime: Runtime, config: Config, next_app: Callable, accounts: Accounts | None = None) -> None:
        self.runtime = runtime
        self.config = config
        self.accounts = accounts or Accounts(config.account)
        self.next_app = next_app

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        match = ROUTE.match(environ.get("PATH_INFO", ""))
        if match is None:
            return self.next_app(environ, start_response)
        rid = request_id()
        if environ["REQUEST_METHOD"] != "POST":
            status, headers, body = error(405, "invalid_request_error", "MethodNotAllowed",
                                          "Only POST is accepted on this path.", rid)
            start_response(status, headers)
            return [body]
        status, headers, answer = self.chat(match.group(1), match.group(2), environ, rid)
        start_response(status, headers)
        return answer

    def chat(self, endpoint_name: str, component: str | None, environ: dict,
             rid: str) -> tuple[str, list[tuple[str, str]], Iterable[bytes]]:
        started = time.perf_counter()
        out = Outcome()
        try:
            req = self._request(endpoint_name, component, environ, rid)
            if _streams(req.body):
                result = self.runtime.stream(req, out)
                headers = [("Content-Type", result.content_type), ("x-amzn-RequestId", rid),
                           ("x-Amzn-Invoked-Production-Variant", result.variant)]
                return "200 OK", headers, Streamed(_passed(result.chunks, endpoint_name), result.chunks)
            answered = self.runtime.invoke(req, out)
        except errors.CallerGone:
            return "499 Client Closed Request", [("Content-Length", "0")], [b""]
        except errors.EmuError as exc:
            status, headers, body = failure(exc, rid)
            log.info("OpenAI chat completions %s%s %s %s %.1fms", endpoint_name,
                     f"/{component}" if component else "", status[:3], headers[-1][1],
                     (time.perf_counter() - started) * 1000)
            return status, headers, [body]
        except Exception:
            log.exception("unhandled error on the OpenAI-compatible path")
            status, headers, body = error(500, "internal_error", "InternalFailure", "An internal error occurred.", rid)
            return status, headers, [body]
        assert isinstance(answered.body, bytes), "a synchronous answer is read into memory"
        headers = [("Content-Type", answered.content_type), ("Content-Length", str(len(answered.body))),
                   ("x-amzn-RequestId", rid), ("x-Amzn-Invoked-Production-Variant", answered.variant)]
        for name, value in (("X-Amzn-SageMaker-Custom-Attributes", answered.custom_attributes),
                            ("X-Amzn-SageMaker-New-Session-Id", answered.new_session_id),
                            ("X-Amzn-SageMaker-Closed-Session-Id", answered.closed_session_id)):
            if value is not None:
                headers.append((name, value))
        return "200 OK", headers, [answered.body]

    def _request(self, endpoint_name: str, component: str | None, environ: dict, rid: str) -> InvokeRequest:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY_BYTES:
            raise errors.InvalidInput(body_too_large())
        authorization = environ.get("HTTP_AUTHORIZATION")
        token = bearer.bearer(authorization)
        account = self.accounts.of_authorization(authorization)
        try:  # the caller guard has refused a malformed token already
            region = bearer.parse(token).region if token else region_of(authorization, self.config.region)
            account = self.accounts.of_key(bearer.parse(token).access_key) if token else account
        except bearer.MalformedToken:
            region = self.config.region
        return InvokeRequest(
            endpoint_name=endpoint_name, inference_component=component, body=environ["wsgi.input"].read(length),
            region=region or self.config.region, account=account,
            content_type=environ.get("CONTENT_TYPE") or "application/json",
            accept=environ.get("HTTP_ACCEPT"), request_id=rid, chat=True,
            # SageMaker's own headers, as InvokeEndpoint takes them: sessions, custom attributes
            session_id=environ.get("HTTP_X_AMZN_SAGEMAKER_SESSION_ID"),
            custom_attributes=environ.get("HTTP_X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES"),
            inference_id=environ.get("HTTP_X_AMZN_SAGEMAKER_INFERENCE_ID"),
            caller_gone=environ.get("waitress.client_disconnected"))


def _streams(body: Any) -> bool:
    """`"stream": true` in the body (one that is not a JSON object goes to the container as is)."""
    if not isinstance(body, bytes) or b'"stream"' not in body:
        return False
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return isinstance(parsed, dict) and parsed.get("stream") is True


def _passed(chunks, endpoint_name: str) -> Generator[bytes, None, None]:
    """The container's server-sent events as they come; a failure after the first byte ends
    the stream with an OpenAI-style error event (the status is sent already)."""
    try:
        yield from chunks
    except errors.ModelStreamFailure as exc:
        yield b"data: " + json.dumps({"error": {"message": exc.message, "type": "model_error",
                                                "code": exc.error_code}}).encode() + b"\n\n"
    except errors.CallerGone:
        return
    except Exception:
        log.exception("stream of %s failed", endpoint_name)
        yield b'data: {"error": {"message": "An internal error occurred while streaming the response.", ' \
              b'"type": "internal_error", "code": "InternalFailure"}}\n\n'
    finally:
        chunks.close()
