"""The control plane's front door: AWS JSON 1.1, `POST /` with `X-Amz-Target: SageMaker.<Op>`."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from flask import Blueprint, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from sagemaker_emu.accounts import Accounts
from sagemaker_emu import errors
from sagemaker_emu.config import Config
from sagemaker_emu.control.registry import OPERATIONS, Call
from sagemaker_emu.control.store import Backends
from sagemaker_emu.protocol.context import is_waiter, region_of
from sagemaker_emu.protocol.errors import control_error, error_code, internal_control_error, json11_response, request_id
from sagemaker_emu.protocol.serialize import to_wire
from sagemaker_emu.schemas.validator import strip_nulls, validate_input
from sagemaker_emu.service_model import control_model

log = logging.getLogger("sagemaker_emu.api")

TARGET_PREFIX = "SageMaker."
_NAME_MEMBERS = ("EndpointName", "EndpointConfigName", "ModelName", "ResourceArn")


def blueprint(backends: Backends, config: Config, accounts: Accounts | None = None) -> Blueprint:
    """`POST /` for every control-plane operation, against `backends` (the caller's account's)."""
    bp = Blueprint("control", __name__)
    accounts = accounts or Accounts(config.account)

    @bp.post("/")
    @bp.post("/<path:_prefix>")  # endpoint_url may carry a path; boto3 then POSTs to it
    def dispatch(_prefix: str = ""):
        return _dispatch(backends, config, accounts)

    return bp


def _dispatch(backends: Backends, config: Config, accounts: Accounts):
    started = time.perf_counter()
    rid = request_id()
    target = request.headers.get("X-Amz-Target") or ""
    operation = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else "-"
    params: dict[str, Any] = {}
    code = ""
    try:
        operation = _operation_name(request.headers.get("X-Amz-Target"))
        params = _parse_body(_read_body())
        validate_input(operation, params)
        response = _call(backends, config, accounts, operation, params, rid)
    except errors.EmuError as exc:
        response = control_error(exc, rid)
        code = " " + error_code(exc)
    except Exception:  # never a stack trace on the wire, never a dead server
        log.exception("unhandled error in %s", operation)
        response = internal_control_error(rid)
        code = " InternalFailure"
    log.info(
        "%s %s %d%s %.1fms",
        operation[:64],
        next((str(params[k]) for k in _NAME_MEMBERS if isinstance(params.get(k), str)), "-"),
        response.status_code,
        code,
        (time.perf_counter() - started) * 1000,
        extra={"operation": operation[:64], "status": response.status_code, "request_id": rid},
    )
    return response


def _operation_name(target: str | None) -> str:
    if not target or not target.startswith(TARGET_PREFIX):
        raise errors.UnknownOperation(f"Unknown or missing X-Amz-Target header: {target or '(none)'}.")
    name = target[len(TARGET_PREFIX) :]
    if name not in control_model().operation_names:
        raise errors.UnknownOperation(f"Unknown operation {name}.")
    if name not in OPERATIONS:
        raise errors.NotImplementedOperation(name)
    return name


def _read_body() -> bytes:
    try:
        return request.get_data(cache=False)
    except RequestEntityTooLarge:
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        raise errors.PayloadTooLarge(f"The request body exceeds the maximum size of {limit} bytes.") from None


def _parse_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_constant=_non_standard)
    except (ValueError, RecursionError):
        raise errors.Malformed("The request body is not valid JSON.") from None
    if isinstance(body, list):
        raise errors.Malformed("Start of list found where not expected.")
    if not isinstance(body, dict):
        raise errors.Malformed("Expected start of structure or map but found a scalar value.")
    return strip_nulls(body)


def _non_standard(token: str):
    """NaN and Infinity are not JSON; Python's parser would take them."""
    raise errors.Malformed(f"Non-standard token '{token}': the request body is not valid JSON.")


def _call(backends: Backends, config: Config, accounts: Accounts, operation: str, params: dict[str, Any], rid: str):
    authorization = request.headers.get("Authorization")
    backend = backends(region_of(authorization, config.region), accounts.of_authorization(authorization))
    call = Call(waiter=is_waiter(request.headers.get("User-Agent")), waiter_hold=config.waiter_hold)
    result = backend.run(OPERATIONS[operation], params, call)
    shape = control_model().operation_model(operation).output_shape
    return json11_response(to_wire(shape, result), rid)
