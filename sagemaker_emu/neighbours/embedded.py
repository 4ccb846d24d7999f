"""moto's backends, in this process, behind moto's own server-mode WSGI apps.

moto is the field's well-kept implementation of these services; its server mode (what
`moto_server` runs) turns HTTP requests into backend calls, so a request that reaches us here
gets the answer moto_server would give. We serve only the services listed in `SERVICES`,
one Flask app per service made on first use, as moto's `DomainDispatcherApplication` does.
"""

from __future__ import annotations

import functools
import io
import logging
import threading
from typing import Callable, Iterable
from xml.parsers.expat import ExpatError

from werkzeug.wrappers import Response

from sagemaker_emu.neighbours.identity_defaults import IamDefaults, StsDefaults
from sagemaker_emu.neighbours.s3_large_objects import LargeObjects
from sagemaker_emu.protocol.errors import edge_error
from sagemaker_emu.service_model import wire_protocol

log = logging.getLogger("sagemaker_emu.neighbours")

# SigV4 signing name -> moto backend name. The services a SageMaker script touches around an
# endpoint: model data and async results (s3), async notifications (sns, sqs), the SDK's
# identity checks (sts, iam).
SERVICES = {"s3": "s3", "sns": "sns", "sqs": "sqs", "sts": "sts", "iam": "iam"}


class EmbeddedServices:
    """WSGI apps for the SERVICES, created on first use; `reset()` empties their backends.
    Every request is served in `account` (the emulator's, as in every SageMaker ARN)."""

    def __init__(self, account: str) -> None:
        self.account = account
        self._apps: dict[str, Callable] = {}
        self._lock = threading.Lock()

    def app(self, service: str) -> Callable:
        backend = SERVICES[service]
        app = self._apps.get(backend)
        if app is None:
            with self._lock:
                app = self._apps.get(backend)
                if app is None:
                    from moto.moto_server.werkzeug_app import create_backend_app

                    flask_app = create_backend_app(backend)  # type: ignore[arg-type]  # a name of SERVICES
                    flask_app.debug = False  # moto turns it on; an error must not reach the caller as a page
                    # what moto does not handle itself: Flask's 500 page, unless answered in AWS's words
                    flask_app.register_error_handler(500, functools.partial(_flask_failure, service))
                    inner = flask_app.wsgi_app
                    if service == "iam":  # roles the SDK names exist; its policy simulation allows
                        inner = IamDefaults(inner, self.account)
                    elif service == "sts":  # the dummy key's caller is a role, as the SDK expects
                        inner = StsDefaults(inner, self.account)
                    elif service == "s3":  # large objects arrive on disk and leave as a stream
                        inner = _BoundedDeletes(LargeObjects(inner, self.account))
                    if wire_protocol(service) == "query":  # moto reads a form in time quadratic in its size
                        inner = _BoundedForms(inner, service)
                    app = self._apps[backend] = _Shielded(inner, service, self.account)
        return app

    def reset(self) -> None:
        """Forget every bucket, object, topic, queue, role... of every account and region."""
        from moto.backends import get_backend

        for backend in SERVICES.values():
            for account in list(get_backend(backend).values()):  # type: ignore[call-overload]
                account.reset()


class _Shielded:
    """One service's app: in the emulator's account, and a failure inside moto answers 500
    InternalFailure in AWS's shape, never a traceback."""

    def __init__(self, app: Callable, service: str, account: str) -> None:
        self.app = app
        self.service = service
        self.account = account

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        # moto's documented per-request account header; set here, so no caller picks another
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = self.account
        try:
            return self.app(environ, start_response)
        except Exception as exc:
            status, headers, body = _failure(self.service, environ.get("REQUEST_METHOD", ""),
                                            environ.get("PATH_INFO", ""), environ.get("CONTENT_TYPE") or "", exc)
            start_response(status, headers)
            return [body]


MAX_FORM_BYTES = 1024 * 1024  # a query call's form; AWS's largest (an SNS message, a policy) are far smaller
MAX_FORM_PARAMETERS = 2_000  # moto: 4,000 took 0.5 s, 8,000 2.4 s, 40,000 over a minute; AWS's calls need < 500


class _BoundedForms:
    """A query-protocol service's forms, bounded before moto reads them: moto's form parsing
    takes time quadratic in the number of parameters (20,000 SNS tags, 1 MB, took 75 s), and
    no call these services take needs more than a few hundred (50 tags, 10 batch entries)."""

    def __init__(self, app: Callable, service: str) -> None:
        self.app = app
        self.service = service

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        if not (environ.get("CONTENT_TYPE") or "").startswith("application/x-www-form-urlencoded"):
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > MAX_FORM_BYTES:
            return self._refuse(environ, start_response, 413, "RequestEntityTooLarge",
                                f"The request body exceeds the maximum size of {MAX_FORM_BYTES} bytes.")
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
        parameters = body.count(b"&") + 1
        if parameters > MAX_FORM_PARAMETERS:
            return self._refuse(environ, start_response, 400, "ValidationError",
                                f"The request has {parameters} parameters; at most {MAX_FORM_PARAMETERS} are accepted.")
        return self.app(environ, start_response)

    def _refuse(self, environ: dict, start_response, status: int, code: str, message: str) -> Iterable[bytes]:
        log.info("the embedded %s service refused a form: %s", self.service, message)
        status_line, headers, body = edge_error(status, code, message, self.service, environ.get("CONTENT_TYPE", ""),
                                                "query")
        start_response(status_line, headers)
        return [body]


MAX_DELETE_OBJECTS = 1_000  # S3's DeleteObjects limit
MAX_DELETE_BYTES = 4 * 1024 * 1024  # 1,000 keys of 1,024 bytes with their versions are about 1.1 MiB
_MALFORMED_XML = "The XML you provided was not well-formed or did not validate against our published schema"


class _BoundedDeletes:
    """S3's DeleteObjects, refused past S3's limit of 1,000 keys as S3 refuses it (400
    MalformedXML) before moto reads it: moto takes any number, at about 30 microseconds each."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or "delete" not in environ.get("QUERY_STRING", "").split("&"):
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if 0 < length <= MAX_DELETE_BYTES else b""
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
        if length > MAX_DELETE_BYTES or body.count(b"<Object>") + body.count(b"<Object ") > MAX_DELETE_OBJECTS:
            status, headers, answer = edge_error(400, "MalformedXML", _MALFORMED_XML, "s3", "", "rest-xml")
            start_response(status, headers)
            return [answer]
        return self.app(environ, start_response)


# Exceptions that mean the caller's body could not be read (XML with entity declarations, which
# moto's parsers refuse; malformed XML; JSON nested past the parser's recursion limit): AWS
# answers those 400, S3 as MalformedXML, the others as their protocol's malformed-input error.
_UNREADABLE = (ExpatError, RecursionError)
_UNREADABLE_MESSAGES = ("entities are disabled",)
# moto reads an S3 request's XML body (a subresource's configuration, CreateBucket's) by indexing
# the parsed document: XML that parses but lacks an element fails with one of these, where S3
# answers MalformedXML (`<Tagging><TagSet><TagSet/></TagSet></Tagging>` raised KeyError 'Tag').
_S3_SCHEMA_MISMATCH = (KeyError, TypeError, AttributeError, IndexError)


def _failure(service: str, method: str, path: str, content_type: str, exc: BaseException,
             xml_body: bool = False) -> tuple[str, list, bytes]:
    """An exception inside an embedded service, as an AWS error in the protocol the caller's
    client reads (never Flask's HTML page): 400 if the body could not be read, else 500.
    `xml_body`: an S3 request with a body that configures a bucket or an object (not a PUT of
    object data)."""
    unreadable = isinstance(exc, _UNREADABLE) or str(exc) in _UNREADABLE_MESSAGES or (
        service == "s3" and xml_body and isinstance(exc, _S3_SCHEMA_MISMATCH))
    if unreadable:
        log.info("the embedded %s service could not read %s %s: %s", service, method, path[:200], exc)
        code = "MalformedXML" if service == "s3" else "MalformedInput"
        status, message = 400, (_MALFORMED_XML if service == "s3" else "The request body could not be read.")
    else:
        log.error("the embedded %s service failed on %s %s", service, method, path[:200], exc_info=exc)
        code, status, message = "InternalFailure", 500, f"The embedded {service} service failed."
    return edge_error(status, code, message, service, content_type, wire_protocol(service))


def _flask_failure(service: str, error) -> Response:
    from flask import request

    cause = getattr(error, "original_exception", None) or error
    # S3's XML bodies: on a bucket (CreateBucket, ?tagging...), or a subresource of an object
    xml_body = bool(request.content_length) and request.method in ("PUT", "POST") and (
        bool(request.query_string) or request.path.strip("/").count("/") == 0)
    status, headers, body = _failure(service, request.method, request.path, request.content_type or "", cause,
                                     xml_body)
    return Response(body, status=int(status.split()[0]), headers=headers)
