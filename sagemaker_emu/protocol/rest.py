"""The runtime's front door: REST-JSON, `POST /endpoints/<name>/invocations`.

Request members travel in headers; they are read as the runtime service model names
them and validated like control-plane input (codes differ: ValidationError here).
"""

from __future__ import annotations

import functools
import logging

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from sagemaker_emu import errors
from sagemaker_emu.protocol.context import region_of
from sagemaker_emu.protocol.errors import internal_runtime_error, request_id, runtime_error
from sagemaker_emu.runtime.invoke import InvokeRequest
from sagemaker_emu.schemas.validator import validate_input
from sagemaker_emu.service_model import RUNTIME_SERVICE, service_model

log = logging.getLogger("sagemaker_emu.api")
bp = Blueprint("runtime", __name__)

# InvokeRequest field -> runtime model member
_FIELDS = {
    "content_type": "ContentType",
    "accept": "Accept",
    "custom_attributes": "CustomAttributes",
    "target_variant": "TargetVariant",
    "target_model": "TargetModel",
    "inference_id": "InferenceId",
    "inference_component": "InferenceComponentName",
    "session_id": "SessionId",
}


@functools.lru_cache(maxsize=None)
def header_members(operation: str) -> dict[str, str]:
    """Member name -> HTTP header, from the runtime model."""
    shape = service_model(RUNTIME_SERVICE).operation_model(operation).input_shape
    return {name: m.serialization["name"] for name, m in shape.members.items()
            if m.serialization.get("location") == "header"}


def read_params(operation: str, endpoint_name: str) -> dict[str, str]:
    params = {"EndpointName": endpoint_name, "Body": ""}  # the body is checked by size, not by schema
    for member, header in header_members(operation).items():
        value = request.headers.get(header)
        if value is not None:
            params[member] = value
    validate_input(operation, params, RUNTIME_SERVICE)
    return params


@bp.post("/endpoints/<path:endpoint_name>/invocations")
def invoke_endpoint(endpoint_name: str) -> Response:
    rid = request_id()
    try:
        params = read_params("InvokeEndpoint", endpoint_name)
        try:
            body = request.get_data(cache=False)
        except RequestEntityTooLarge:
            raise errors.PayloadTooLarge("The request body is larger than the emulator accepts.") from None
        invoke = InvokeRequest(
            endpoint_name=endpoint_name,
            body=body,
            region=region_of(request.headers.get("Authorization"), current_app.config["EMU"].region),
            **{f: params.get(m) for f, m in _FIELDS.items()},
        )
        result = current_app.config["EMU_RUNTIME"].invoke(invoke)
    except errors.EmuError as exc:
        log.info("InvokeEndpoint %s %s", endpoint_name, type(exc).__name__)
        return runtime_error(exc, rid)
    except Exception:
        log.exception("unhandled error in InvokeEndpoint")
        return internal_runtime_error(rid)
    resp = Response(result.body, status=200, content_type=result.content_type)
    resp.headers["x-Amzn-Invoked-Production-Variant"] = result.variant
    if result.custom_attributes is not None:
        resp.headers["X-Amzn-SageMaker-Custom-Attributes"] = result.custom_attributes
    resp.headers["x-amzn-RequestId"] = rid
    return resp
