"""Turn the emulator's errors into AWS error responses: one table per protocol."""

from __future__ import annotations

import json
import uuid
from xml.sax.saxutils import escape

import cbor2

from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Response

from sagemaker_emu import errors
from sagemaker_emu.protocol import query

JSON11 = "application/x-amz-json-1.1"

# error class -> (code in `__type`, HTTP status) for the JSON 1.1 control plane.
# SageMaker reports not-found and duplicates as ValidationException, not ResourceNotFound.
CONTROL_CODES: dict[type[errors.EmuError], tuple[str, int]] = {
    errors.InvalidInput: ("ValidationException", 400),
    errors.Malformed: ("SerializationException", 400),
    errors.LimitExceeded: ("ResourceLimitExceeded", 400),
    errors.UnknownOperation: ("UnknownOperationException", 400),
    errors.PayloadTooLarge: ("RequestEntityTooLargeException", 413),
    # 501 is not retried by botocore, so a missing feature fails fast and visibly.
    errors.NotImplementedOperation: ("NotImplementedException", 501),
}


# error class -> (code in `x-amzn-ErrorType`, HTTP status) for the REST-JSON runtime.
RUNTIME_CODES: dict[type[errors.EmuError], tuple[str, int]] = {
    errors.InvalidInput: ("ValidationError", 400),
    errors.Malformed: ("ValidationError", 400),
    errors.ModelFailure: ("ModelError", 424),
    errors.Unavailable: ("ServiceUnavailable", 503),
    errors.PayloadTooLarge: ("ValidationError", 413),
    errors.NotImplementedOperation: ("NotImplementedException", 501),
    errors.Throttled: ("ThrottlingException", 400),  # botocore retries this code
}


# error class -> (code, HTTP status) for sagemaker-inference-router-runtime (REST-JSON too).
ROUTER_CODES: dict[type[errors.EmuError], tuple[str, int]] = {
    errors.InvalidInput: ("ValidationException", 400),
    errors.Malformed: ("ValidationException", 400),
    errors.PayloadTooLarge: ("", 413),  # "HTTP 413, with no error code" (the router's troubleshooting page)
    errors.ModelFailure: ("ModelError", 424),
    errors.Throttled: ("ThrottlingException", 429),
    errors.ModelNotReady: ("ModelNotReadyException", 429),
    errors.Unavailable: ("ServiceUnavailableException", 503),
    errors.NotImplementedOperation: ("NotImplementedException", 501),
}


def _lookup(table: dict, exc: errors.EmuError) -> tuple[str, int]:
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return ("InternalFailure", 500)


def router_error_type(exc: errors.EmuError) -> str:
    """What a router's caller sees for `exc`: the router runtime's code, or the status when it has none."""
    code, status = _lookup(ROUTER_CODES, exc)
    return code or str(status)


def error_code(exc: errors.EmuError) -> str:
    """The control plane's wire code for `exc`, for log lines."""
    return _lookup(CONTROL_CODES, exc)[0]


def request_id() -> str:
    return str(uuid.uuid4())


def control_error(exc: errors.EmuError, rid: str) -> Response:
    """JSON 1.1 envelope: botocore reads the code only from the body's `__type`. A ServiceError
    names its error shape of SageMaker's model (ResourceNotFound, ConflictException...): 400."""
    code, status = (exc.shape, 400) if isinstance(exc, errors.ServiceError) else _lookup(CONTROL_CODES, exc)
    return json11_response({"__type": code, "Message": exc.message}, rid, status)


def internal_control_error(rid: str) -> Response:
    return json11_response(
        {"__type": "InternalFailure", "Message": "The request processing has failed because of an unknown error."},
        rid,
        500,
    )


def json11_response(body: dict, rid: str, status: int = 200) -> Response:
    resp = Response(json.dumps(body), status=status, content_type=JSON11)
    resp.headers["x-amzn-RequestId"] = rid
    return resp


def runtime_error(exc: errors.EmuError, rid: str, table: dict | None = None) -> tuple[str, list, bytes]:
    """REST-JSON: botocore reads the code from `x-amzn-ErrorType`, members from the body.
    `table`: the service's codes (the endpoint runtime's by default; ROUTER_CODES).

    Returns a WSGI (status, headers, body) triple: the runtime's front door is plain WSGI."""
    code, status = _lookup(table or RUNTIME_CODES, exc)
    body: dict = {"Message": exc.message}
    if isinstance(exc, errors.ModelFailure):
        body.update(OriginalStatusCode=exc.original_status, OriginalMessage=exc.original_message,
                    LogStreamArn=exc.log_stream_arn)
    return _wsgi_error(status, code, body, rid)


def internal_runtime_error(rid: str) -> tuple[str, list, bytes]:
    return _wsgi_error(500, "InternalFailure", {"Message": "An internal error occurred."}, rid)


def _wsgi_error(status: int, code: str, body: dict, rid: str) -> tuple[str, list, bytes]:
    data = json.dumps(body).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
               *([("x-amzn-ErrorType", code)] if code else []), ("x-amzn-RequestId", rid)]
    return f"{status} {HTTP_STATUS_CODES.get(status, 'Error')}", headers, data


# What the services that answer in XML call the refusals the edge names in SageMaker's words.
XML_CODES = {"InvalidSignatureException": "SignatureDoesNotMatch", "UnrecognizedClientException": "InvalidClientTokenId",
             "AccessDeniedException": "AccessDenied"}
S3_CODES = {**XML_CODES, "UnrecognizedClientException": "InvalidAccessKeyId"}


XML_PROTOCOLS = ("query", "ec2", "rest-xml")  # botocore reads `<ErrorResponse><Error><Code>` in each


def edge_error(status: int, code: str, message: str, service: str | None = None,
               content_type: str = "", protocol: str | None = None) -> tuple[str, list, bytes]:
    """An error raised before any service has the request (framing, who may call), in the
    protocol a signed caller reads (`service`, from the SigV4 scope; `protocol`, its botocore
    protocol where known): S3's XML for `s3`, the query protocol's XML for a form-encoded call
    (STS, IAM, SNS) or any XML protocol, CBOR for an RPC v2 call (CloudWatch); else JSON that
    JSON 1.x clients (`__type`) and REST-JSON clients (`x-amzn-ErrorType`) alike read."""
    rid, media = request_id(), content_type.split(";")[0].strip().lower()
    extra: list[tuple[str, str]] = []
    if service == "s3":
        code, kind = S3_CODES.get(code, code), "application/xml"
        data = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{escape(code)}</Code>"
                f"<Message>{escape(message)}</Message><RequestId>{rid}</RequestId></Error>").encode()
    elif protocol in XML_PROTOCOLS or (service is not None and media == "application/x-www-form-urlencoded"):
        code, kind = XML_CODES.get(code, code), "text/xml"  # signed: not a browser's form
        data = query.error(code, message, sender=True, rid=rid, namespace="")
    elif media == "application/cbor" or protocol == "smithy-rpc-v2-cbor":
        kind, data, extra = "application/cbor", cbor2.dumps({"__type": code, "message": message}), [
            ("smithy-protocol", "rpc-v2-cbor")]
    else:
        kind, data = "application/json", json.dumps({"__type": code, "message": message}).encode()  # message or Message
        extra = [("x-amzn-ErrorType", code)]
    headers = [("Content-Type", kind), ("Content-Length", str(len(data))), ("x-amzn-RequestId", rid), *extra]
    return f"{status} {HTTP_STATUS_CODES.get(status, 'Error')}", headers, data
