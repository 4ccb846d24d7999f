"""One URL for several AWS services: a request goes to the service its SigV4 credential scope
names (the `Authorization` header, or `X-Amz-Credential` in a presigned URL's query).

SageMaker and its runtime both sign as `sagemaker` and go on to the next app, as do unsigned
requests (`/_emu/`, health probes). Each other service named in `apps` gets the request; a
signed request for a service nobody here serves is answered with a clear 501, in the protocol
that service's clients read (XML for CloudFormation or Route 53, JSON for DynamoDB).
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping

from sagemaker_emu.protocol.errors import edge_error
from sagemaker_emu.service_model import wire_protocol

OWN = "sagemaker"


def credential(environ: dict) -> list[str] | None:
    """The request's SigV4 credential, `[key id, day, region, service, "aws4_request"]`, from the
    `Authorization` header or a presigned URL's `X-Amz-Credential`; None without one."""
    scope = environ.get("HTTP_AUTHORIZATION")
    if scope:
        start = scope.find("Credential=")
        if start < 0:
            return None
        parts = scope[start + 11:].split(",", 1)[0].split("/")
    else:
        query = environ.get("QUERY_STRING", "")
        start = query.find("X-Amz-Credential=")
        if start < 0:
            return None
        parts = query[start + 17:].split("&", 1)[0].replace("%2F", "/").replace("%2f", "/").split("/")
    return parts if len(parts) == 5 else None


def signing_service(environ: dict) -> str | None:
    """The service of the request's SigV4 scope (`Credential=AKID/day/region/service/aws4_request`).
    Of our services only S3 still takes SigV2 (`AWS key:signature`, or a presigned URL's
    `AWSAccessKeyId`), so such a request is S3's."""
    parts = credential(environ)
    if parts is not None:
        return parts[3].lower()
    scope = environ.get("HTTP_AUTHORIZATION")
    if scope:
        return "s3" if scope.startswith("AWS ") and "Credential=" not in scope else None
    query = environ.get("QUERY_STRING", "")
    return "s3" if "X-Amz-Credential=" not in query and "AWSAccessKeyId=" in query and "Signature=" in query else None


class ServiceRouter:
    """WSGI: dispatch by the signing service; `sagemaker` and unsigned requests go to `own`."""

    def __init__(self, own: Callable, apps: Mapping[str, Callable] | Callable[[str], Callable | None]) -> None:
        self.own = own
        self.lookup = apps.get if isinstance(apps, Mapping) else apps

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        service = signing_service(environ)
        if service is None or service == OWN:
            return self.own(environ, start_response)
        app = self.lookup(service)
        if app is not None:
            return app(environ, start_response)
        status, headers, body = edge_error(
            501, "NotImplemented", f"sagemaker-emu does not serve the AWS service '{service[:64]}' on this URL.",
            service, environ.get("CONTENT_TYPE", ""), wire_protocol(service))
        start_response(status, headers)
        return [body]
