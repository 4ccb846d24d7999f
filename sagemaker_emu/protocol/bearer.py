"""SageMaker's bearer tokens: `Authorization: Bearer sagemaker-api-key-<base64>`.

The SageMaker SDK v3's `generate_token` (sagemaker.core.token_generator) presigns, with SigV4
query authentication, a `POST https://sagemaker.amazonaws.com/?Action=CallWithBearerToken`
(signed header `host`, an empty body, the region in the credential scope only), drops the
scheme, appends `&Version=1` after signing, and base64-encodes the result. Reading one tells
the region and access key a call is made with; verifying it (edge/auth.py) rebuilds that
request and checks its signature and expiry.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import unquote

PREFIX = "sagemaker-api-key-"
SIGNED_AFTER = "&Version=1"  # appended to the presigned URL after it was signed
ACTION = "CallWithBearerToken"


class MalformedToken(ValueError):
    """Not a SageMaker bearer token (the message says why)."""


@dataclass(frozen=True)
class BearerToken:
    host: str  # the presigned URL's host (sagemaker.amazonaws.com)
    path: str
    query: str  # as signed: without SIGNED_AFTER
    credential: str  # <access key>/<day>/<region>/<service>/aws4_request

    def _scope(self, index: int) -> str:
        parts = self.credential.split("/")
        return parts[index] if len(parts) == 5 else ""

    @property
    def access_key(self) -> str:
        return self._scope(0)

    @property
    def region(self) -> str:
        return self._scope(2)

    @property
    def service(self) -> str:
        return self._scope(3)


def bearer(authorization: str | None) -> str | None:
    """The token of a `Bearer` Authorization header, else None."""
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


def parse(token: str) -> BearerToken:
    """The presigned request a token holds; MalformedToken if it holds none."""
    if not token.startswith(PREFIX):
        raise MalformedToken("The bearer token is not a SageMaker API key (it must begin with "
                             f"'{PREFIX}'; a token of another service, such as Amazon Bedrock's, is not accepted).")
    try:
        url = base64.b64decode(token[len(PREFIX):], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise MalformedToken("The bearer token is not valid base64.") from None
    if url.endswith(SIGNED_AFTER):
        url = url[: -len(SIGNED_AFTER)]
    host, slash, rest = url.partition("/")
    path, _, query = (slash + rest).partition("?")
    params = {unquote(k): unquote(v) for k, _, v in (p.partition("=") for p in query.split("&") if p)}
    if not host or params.get("Action") != ACTION or "X-Amz-Credential" not in params:
        raise MalformedToken("The bearer token does not hold a presigned CallWithBearerToken request.")
    return BearerToken(host, path or "/", query, params["X-Amz-Credential"])
