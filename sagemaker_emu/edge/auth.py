"""Optional SigV4 verification (`serve --auth sigv4 --credentials FILE`).

Off by default: local tools (moto, LocalStack) accept any signature, and so do we. When on,
every request must be signed with a key pair from FILE (the AWS shared-credentials format:
`aws_access_key_id` / `aws_secret_access_key` in any profile), and a wrong one gets the
answer AWS gives. The signature is recomputed from the request as received, as botocore
computes it: the method, the path (S3's as sent, any other service's normalised and encoded
again), the query, the headers the client listed in SignedHeaders, and the body's SHA-256,
which is computed here (S3 may declare its payload unsigned). Presigned URLs carry the same
in their query.
"""

from __future__ import annotations

import base64
import configparser
import io
import datetime
import hashlib
import hmac
import re
import tempfile
import time
from pathlib import Path
from urllib.parse import SplitResult, quote, unquote

from botocore.utils import normalize_url_path

from sagemaker_emu.protocol.bearer import BearerToken

_AUTH = re.compile(r"^AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$")
MAX_SKEW = datetime.timedelta(minutes=15)
SPOOL_BYTES = 1024 * 1024  # a body larger than this is hashed through a temporary file
CHUNK_BYTES = 1024 * 1024
MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details.")


class SigV4Verifier:
    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys  # access key id -> secret access key

    @classmethod
    def from_file(cls, path: str | Path) -> "SigV4Verifier":
        parser = configparser.ConfigParser()
        parser.read_string(Path(path).read_text())
        keys = {parser[s]["aws_access_key_id"].strip(): parser[s]["aws_secret_access_key"].strip()
                for s in parser.sections()
                if "aws_access_key_id" in parser[s] and "aws_secret_access_key" in parser[s]}
        if not keys:
            raise ValueError(f"{path}: no profile with aws_access_key_id and aws_secret_access_key")
        return cls(keys)

    def any_key(self) -> tuple[str, str]:
        """One accepted (key id, secret) pair, for the emulator's calls to its own services."""
        return next(iter(self.keys.items()))

    def refusal(self, environ: dict) -> tuple[str, str] | None:
        """(code, message) when the request is not signed by a known key, else None. The
        signature comes from the Authorization header or, in a presigned URL, the query."""
        authorization = environ.get("HTTP_AUTHORIZATION")
        query = environ.get("QUERY_STRING", "")
        if not authorization and "X-Amz-Signature=" in query:
            return self._presigned(environ, query)
        if not authorization and "AWSAccessKeyId=" in query and "Signature=" in query:
            return self._presigned_v2(environ, query)
        if not authorization:
            return ("MissingAuthenticationTokenException", "Missing Authentication Token")
        match = _AUTH.match(authorization.strip())
        if match is None:
            return ("IncompleteSignatureException", "Authorization header requires 'Credential', "
                    "'Signature' and 'SignedHeaders' parameters, signed with AWS4-HMAC-SHA256.")
        credential, signed, signature = match.groups()
        return self._check(environ, credential, signed, signature, environ.get("HTTP_X_AMZ_DATE", ""), query)

    def bearer_refusal(self, token: BearerToken) -> tuple[str, str] | None:
        """(code, message) unless `token` was signed, not expired, by a known key: the
        presigned CallWithBearerToken request it holds is rebuilt and verified as AWS would."""
        if token.service != "sagemaker":
            return ("InvalidSignatureException", f"The bearer token is scoped to service '{token.service[:64]}', "
                    "not 'sagemaker'.")
        presigned = {"REQUEST_METHOD": "POST", "PATH_INFO": token.path, "QUERY_STRING": token.query,
                     "HTTP_HOST": token.host, "CONTENT_LENGTH": "0", "wsgi.input": io.BytesIO(b"")}
        return self._presigned(presigned, token.query)

    def _presigned(self, environ: dict, query: str) -> tuple[str, str] | None:
        params = _params(query)
        if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or not all(
                params.get(k) for k in ("X-Amz-Credential", "X-Amz-SignedHeaders", "X-Amz-Date", "X-Amz-Signature")):
            return ("AuthorizationQueryParametersError", "Query-string authentication version 4 requires the "
                    "X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
                    "X-Amz-Expires parameters.")
        try:
            expires = int(params.get("X-Amz-Expires", "0"))
            signed_at = _when(params["X-Amz-Date"])
        except ValueError:
            return ("AuthorizationQueryParametersError", "X-Amz-Date and X-Amz-Expires must be a date and seconds.")
        if datetime.datetime.now(datetime.timezone.utc) > signed_at + datetime.timedelta(seconds=expires):
            return ("AccessDenied", "Request has expired")
        unsigned_query = "&".join(p for p in query.split("&") if not p.startswith("X-Amz-Signature="))
        return self._check(environ, params["X-Amz-Credential"], params["X-Amz-SignedHeaders"],
                           params["X-Amz-Signature"], params["X-Amz-Date"], unsigned_query, presigned=True)

    def _presigned_v2(self, environ: dict, query: str) -> tuple[str, str] | None:
        """An S3 URL presigned with signature version 2, which boto3 still makes by default:
        HMAC-SHA1 over the method, Content-MD5, Content-Type, Expires, the x-amz- parameters and
        the resource (the bucket's path, with the sub-resources S3 signs), as botocore signs it."""
        from botocore.auth import HmacV1Auth

        params = _params(query)
        secret = self.keys.get(params.get("AWSAccessKeyId", ""))
        if secret is None:
            return ("UnrecognizedClientException", "The security token included in the request is invalid.")
        expires = params.get("Expires", "")
        if not expires.isdigit():
            return ("AuthorizationQueryParametersError", "Query-string authentication requires the Signature, "
                    "Expires and AWSAccessKeyId parameters.")
        if time.time() > int(expires):
            return ("AccessDenied", "Request has expired")
        path = _raw_path(environ)
        host = environ.get("HTTP_HOST", "").rsplit(":", 1)[0].lower()
        if host.endswith(".localhost"):  # virtual-host style: the bucket is in the name, and signed
            path = "/" + host[: -len(".localhost")] + path
        resource = HmacV1Auth(None).canonical_resource(SplitResult("", "", path, query, ""))
        custom = sorted((k.lower(), v) for k, v in params.items() if k.lower().startswith("x-amz-"))
        to_sign = "\n".join([environ["REQUEST_METHOD"].upper(),
                             params.get("content-md5", environ.get("HTTP_CONTENT_MD5", "")),
                             params.get("content-type", environ.get("CONTENT_TYPE", "")), expires,
                             *(f"{k}:{v}" for k, v in custom), resource])
        expected = base64.b64encode(hmac.new(secret.encode(), to_sign.encode(), hashlib.sha1).digest()).decode()
        return None if hmac.compare_digest(expected, params.get("Signature", "")) else (
            "InvalidSignatureException", MISMATCH)

    def _check(self, environ: dict, credential: str, signed: str, signature: str, stamp: str, query: str,
               presigned: bool = False) -> tuple[str, str] | None:
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            return ("IncompleteSignatureException", f"Credential '{credential[:200]}' is not well formed.")
        key_id, day, region, service, _ = parts
        secret = self.keys.get(key_id)
        if secret is None:
            return ("UnrecognizedClientException", "The security token included in the request is invalid.")
        try:
            when = _when(stamp)
        except ValueError:
            return ("IncompleteSignatureException", "The request must carry an X-Amz-Date header.")
        now = datetime.datetime.now(datetime.timezone.utc)
        if not presigned and abs(now - when) > MAX_SKEW:
            return ("InvalidSignatureException", f"Signature expired: {stamp} is now earlier than "
                    f"{(now - MAX_SKEW).strftime('%Y%m%dT%H%M%SZ')} ({now.strftime('%Y%m%dT%H%M%SZ')} - 15 min.)")
        names = signed.split(";")
        if "host" not in names or stamp[:8] != day:
            return ("InvalidSignatureException", MISMATCH)
        if presigned and service == "s3":  # S3's presigned URLs sign no payload (botocore's S3SigV4QueryAuth)
            payload = UNSIGNED_PAYLOAD
        else:
            payload, refused = _payload(environ, service, names)
            if refused is not None:
                return refused
        path = _raw_path(environ)
        canonical = "\n".join([
            environ["REQUEST_METHOD"].upper(),
            # as botocore signs it: S3's path as sent; any other service's normalised, then encoded again
            path if service == "s3" else quote(normalize_url_path(path), safe="/~"),
            "&".join(f"{k}={v}" for k, _, v in sorted(p.partition("=") for p in query.split("&") if p)),
            "".join(f"{n}:{' '.join(_header(environ, n).split())}\n" for n in names),
            signed,
            payload,
        ])
        scope = f"{day}/{region}/{service}/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = f"AWS4{secret}".encode()
        for part in (day, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return None if hmac.compare_digest(expected, signature) else ("InvalidSignatureException", MISMATCH)


def _params(query: str) -> dict[str, str]:
    """A query's parameters, percent-decoded only: a `+` stays a plus (a base64 signature)."""
    return {unquote(k): unquote(v) for k, _, v in (p.partition("=") for p in query.split("&") if p)}


def _when(stamp: str) -> datetime.datetime:
    return datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)


UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STATUS = {"XAmzContentSHA256Mismatch": 400, "AuthorizationQueryParametersError": 400}  # else 403
S3_UNSIGNED = {UNSIGNED_PAYLOAD, "STREAMING-UNSIGNED-PAYLOAD-TRAILER"}  # what botocore may declare to S3


def _payload(environ: dict, service: str, signed: list[str]) -> tuple[str, tuple[str, str] | None]:
    """(the payload hash the signature covers, a refusal or None). The body is hashed here,
    never taken on the caller's word: other services sign the body's hash (a declared
    X-Amz-Content-SHA256 is ignored, so a replay with another body fails); S3 signs the header,
    which must be among the signed ones and, unless it declares the payload unsigned, match."""
    computed = _hash_body(environ)
    if service != "s3":
        return computed, None
    declared = environ.get("HTTP_X_AMZ_CONTENT_SHA256")
    if declared is None:
        return computed, None
    if "x-amz-content-sha256" not in signed:
        return declared, ("InvalidSignatureException", MISMATCH)
    if declared not in S3_UNSIGNED and declared != computed:
        return declared, ("XAmzContentSHA256Mismatch",
                          "The provided 'x-amz-content-sha256' header does not match what was computed.")
    return declared, None


def _raw_path(environ: dict) -> str:
    uri = environ.get("REQUEST_URI") or environ.get("RAW_URI") or quote(environ.get("PATH_INFO", "/"))
    return uri.split("?", 1)[0] or "/"


def _header(environ: dict, name: str) -> str:
    key = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}.get(name)
    return environ.get(key or "HTTP_" + name.upper().replace("-", "_"), "")


def _hash_body(environ: dict) -> str:
    """The body's SHA-256, read in chunks and spooled for the service behind us: an S3 upload
    of gigabytes is hashed without being held in memory."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    digest = hashlib.sha256()
    spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    source = environ["wsgi.input"]
    while length > 0:
        chunk = source.read(min(length, CHUNK_BYTES))
        if not chunk:
            break
        digest.update(chunk)
        spooled.write(chunk)
        length -= len(chunk)
    spooled.seek(0)
    environ["wsgi.input"] = spooled
    return digest.hexdigest()
