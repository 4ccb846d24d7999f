"""The front door of the emulator's other AWS services (CloudWatch, Application Auto Scaling):
`POST /` with `X-Amz-Target: <prefix>.<Operation>` and a JSON body (AWS JSON 1.0 or 1.1), or
`POST /service/<ServiceName>/operation/<Operation>` with a CBOR body (Smithy RPC v2 CBOR, what
botocore speaks to CloudWatch since 1.44), or, for a service that has it, a form-encoded
`Action=<Operation>` (the query protocol, protocol/query.py), all against one dispatch table
per service.

Input is checked against the service's botocore model like SageMaker's; results are shaped by
its output shapes. Errors are the model's error shapes: `__type` names the shape, and for a
service that was once a query service (CloudWatch) `x-amzn-query-error` carries its query code,
from which botocore takes the code it raises.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any, Callable, Iterable, Mapping

import cbor2

from sagemaker_emu import errors
from sagemaker_emu.protocol import query
from sagemaker_emu.protocol.context import region_of
from sagemaker_emu.protocol.errors import HTTP_STATUS_CODES, request_id
from sagemaker_emu.protocol.serialize import to_wire
from sagemaker_emu.schemas.validator import strip_nulls, validate_input
from sagemaker_emu.service_model import service_model

log = logging.getLogger("sagemaker_emu.api")

# An operation: (region, validated input) -> output members
Operation = Callable[[str, dict[str, Any]], dict[str, Any]]
MAX_BODY_BYTES = 1024 * 1024  # CloudWatch's PutMetricData takes 1 MB, the largest of these inputs


class RpcService:
    """WSGI app for one service (`service` is botocore's name, e.g. `cloudwatch`)."""

    def __init__(self, service: str, operations: Mapping[str, Operation], default_region: str) -> None:
        self.model = service_model(service)
        self.service = service
        self.operations = operations
        self.default_region = default_region
        self.query_compatible = "awsQueryCompatible" in self.model.metadata
        self.json_type = f"application/x-amz-json-{self.model.metadata.get('jsonVersion', '1.1')}"
        self.query_namespace: str = self.model.metadata.get("xmlNamespace", "") if "query" in (
            self.model.metadata.get("protocols") or [self.model.metadata.get("protocol")]) else ""

    def _query(self, environ: dict, start_response) -> Iterable[bytes]:
        rid, operation = request_id(), "-"
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length > MAX_BODY_BYTES:
                raise errors.PayloadTooLarge(f"The request body exceeds the maximum size of {MAX_BODY_BYTES} bytes.")
            operation, flat = query.parse(environ["wsgi.input"].read(length) if length else b"")
            if operation not in self.model.operation_names:
                raise errors.UnknownOperation(f"Could not find operation {operation[:64] or '(none)'}.")
            if operation not in self.operations:
                raise errors.NotImplementedOperation(operation)
            model = self.model.operation_model(operation)
            params = strip_nulls(query.params_of(model.input_shape, flat))
            validate_input(operation, params, self.service)
            result = self.operations[operation](region_of(environ.get("HTTP_AUTHORIZATION"), self.default_region),
                                                params)
            status, data = 200, query.response(model, result, rid, self.query_namespace)
        except errors.EmuError as exc:
            status, body, headers = self._error(exc)
            code = dict(headers).get("x-amzn-query-error", body["__type"]).split(";")[0]
            data = query.error(code, exc.message, status < 500, rid, self.query_namespace)
            log.info("%s %s %d %s", self.service, operation, status, code)
        except Exception:
            log.exception("unhandled error in %s %s", self.service, operation)
            status, data = 500, query.error("InternalFailure", "An internal error occurred.", False, rid,
                                            self.query_namespace)
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'Error')}",
                       [("Content-Type", "text/xml"), ("Content-Length", str(len(data))), ("x-amzn-RequestId", rid)])
        return [data]

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        if self.query_namespace and (environ.get("CONTENT_TYPE") or "").startswith("application/x-www-form-urlencoded"):
            return self._query(environ, start_response)
        cbor = environ.get("PATH_INFO", "").startswith("/service/")
        rid = request_id()
        operation = "-"
        try:
            operation = self._operation(environ, cbor)
            params = self._params(environ, cbor)
            validate_input(operation, params, self.service)
            result = self.operations[operation](region_of(environ.get("HTTP_AUTHORIZATION"), self.default_region),
                                                params)
            shape = self.model.operation_model(operation).output_shape
            status, body = 200, _cbor_out(shape, result) if cbor else to_wire(shape, result)
            headers: list[tuple[str, str]] = []
        except errors.EmuError as exc:
            status, body, headers = self._error(exc)
            log.info("%s %s %d %s", self.service, operation, status, body.get("__type"))
        except Exception:  # never a stack trace on the wire, never a dead server
            log.exception("unhandled error in %s %s", self.service, operation)
            status, body, headers = 500, {"__type": "InternalFailure", "message": "An internal error occurred."}, []
        data = cbor2.dumps(body, datetime_as_timestamp=True, timezone=dt.timezone.utc) if cbor else json.dumps(body).encode()
        headers += [("Content-Type", "application/cbor" if cbor else self.json_type),
                    ("Content-Length", str(len(data))), ("x-amzn-RequestId", rid)]
        if cbor:
            headers.append(("smithy-protocol", "rpc-v2-cbor"))
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'Error')}", headers)
        return [data]

    def _operation(self, environ: dict, cbor: bool) -> str:
        if cbor:
            parts = environ["PATH_INFO"].split("/")  # /service/<name>/operation/<op>
            name = parts[4] if len(parts) == 5 and parts[3] == "operation" else ""
        else:
            target = environ.get("HTTP_X_AMZ_TARGET") or ""
            prefix, _, name = target.partition(".")
            if prefix != self.model.metadata.get("targetPrefix"):
                name = ""
        if name not in self.model.operation_names:
            raise errors.UnknownOperation(f"Unknown operation {name[:64] or '(none)'}.")
        if name not in self.operations:
            raise errors.NotImplementedOperation(name)
        return name

    def _params(self, environ: dict, cbor: bool) -> dict[str, Any]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY_BYTES:
            raise errors.PayloadTooLarge(f"The request body exceeds the maximum size of {MAX_BODY_BYTES} bytes.")
        raw = environ["wsgi.input"].read(length) if length else b""
        if not raw.strip():
            return {}
        try:
            body = cbor2.loads(raw) if cbor else json.loads(raw)
        except Exception:  # cbor2 raises several kinds; a body we cannot read is the caller's
            raise errors.Malformed(f"The request body is not valid {'CBOR' if cbor else 'JSON'}.") from None
        if not isinstance(body, dict):
            raise errors.Malformed("Expected start of structure or map.")
        return strip_nulls(_from_cbor(body, set()) if cbor else body)

    def _error(self, exc: errors.EmuError) -> tuple[int, dict, list[tuple[str, str]]]:
        if isinstance(exc, errors.ServiceError):
            shape = self.model.shape_for(exc.shape)
            meta = shape.metadata.get("error", {})
            status = meta.get("httpStatusCode", 400)
            headers = []
            if self.query_compatible and "code" in meta:
                headers.append(("x-amzn-query-error", f"{meta['code']};{'Sender' if meta.get('senderFault') else 'Receiver'}"))
            return status, {"__type": exc.shape, "message": exc.message}, headers
        code, status = {
            errors.UnknownOperation: ("UnknownOperationException", 400),
            errors.NotImplementedOperation: ("NotImplementedException", 501),
            errors.Malformed: ("SerializationException", 400),
            errors.PayloadTooLarge: ("RequestEntityTooLargeException", 413),
        }.get(type(exc), ("ValidationError" if self.query_compatible else "ValidationException", 400))
        headers = [("x-amzn-query-error", f"{code};Sender")] if self.query_compatible and status < 500 else []
        return status, {"__type": code, "message": exc.message}, headers


INT64 = 2**64  # CBOR's integers; a bignum (tags 2 and 3) beyond them is no input's number


def _from_cbor(value: Any, seen: set[int]) -> Any:
    """CBOR input as JSON would have carried it (timestamps as epoch seconds), refusing what
    Smithy RPC v2 CBOR never sends and botocore never writes: a value shared between places
    (tags 28 and 29, with which 200 bytes stand for a tree of 2^100 leaves: each container is
    visited once here, so sharing is found at its second use), map keys that are not strings,
    and kinds no input shape has (sets, decimals, UUIDs, regular expressions, bignums...).
    cbor2 itself stops nesting at 400 levels, below Python's recursion limit."""
    if isinstance(value, (dict, list)):
        if id(value) in seen:
            raise errors.Malformed("The request body uses a value in more than one place (CBOR tags 28 and 29), "
                                   "which Smithy RPC v2 CBOR does not.")
        seen.add(id(value))
        if isinstance(value, list):
            return [_from_cbor(v, seen) for v in value]
        if not all(isinstance(k, str) for k in value):
            raise errors.Malformed("The request body has a map key that is not a text string.")
        return {k: _from_cbor(v, seen) for k, v in value.items()}
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
        raise errors.Malformed("The request body has an integer beyond 64 bits.")
    if value is None or isinstance(value, (str, bytes, bool, int, float)):
        return value
    raise errors.Malformed(f"The request body holds a CBOR value of a kind no input has ({type(value).__name__}).")


def _cbor_out(shape, value: Any) -> Any:
    """A result shaped for CBOR: as for JSON, but timestamps as datetimes (CBOR tag 1)."""
    if shape is None:
        return {}
    t = shape.type_name
    if t == "structure":
        return {name: _cbor_out(m, value[name]) for name, m in shape.members.items() if value.get(name) is not None}
    if t == "list":
        return [_cbor_out(shape.member, v) for v in value]
    if t == "map":
        return {k: _cbor_out(shape.value, v) for k, v in value.items()}
    if t == "timestamp":
        return value if isinstance(value, dt.datetime) else dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
    return to_wire(shape, value)
