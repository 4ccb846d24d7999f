"""Optional SigV4 verification (`serve --auth sigv4 --credentials FILE`).

Off by default: local tools (moto, LocalStack) accept any signature, and so do we. When on,
every request must be signed with a key pair from FILE (the AWS shared-credentials format:
`aws_access_key_id` / `aws_secret_access_key` in any profile), and a wrong one gets the
answer AWS gives. The signature is recomputed from the request as received: the method,
path and query, the headers the client listed in SignedHeaders, and the body's SHA-256.
"""

from __future__ import annotations

import configparser
import datetime
import hashlib
import hmac
import io
import re
from pathlib import Path
from urllib.parse import quote

from botocore.utils import normalize_url_path

_AUTH = re.compile(r"^AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$")
MAX_SKEW = datetime.timedelta(minutes=15)
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
        """(code, message) when the request is not signed by a known key, else None."""
        authorization = environ.get("HTTP_AUTHORIZATION")
        if not authorization:
            return ("MissingAuthenticationTokenException", "Missing Authentication Token")
        match = _AUTH.match(authorization.strip())
        if match is None:
            return ("IncompleteSignatureException", "Authorization header requires 'Credential', "
                    "'Signature' and 'SignedHeaders' parameters, signed with AWS4-HMAC-SHA256.")
        credential, signed, signature = match.groups()
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            return ("IncompleteSignatureException", f"Credential '{credential[:200]}' is not well formed.")
        key_id, day, region, service, _ = parts
        secret = self.keys.get(key_id)
        if secret is None:
            return ("UnrecognizedClientException", "The security token included in the request is invalid.")
        stamp = environ.get("HTTP_X_AMZ_DATE", "")
        try:
            when = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            return ("IncompleteSignatureException", "The request must carry an X-Amz-Date header.")
        now = datetime.datetime.now(datetime.timezone.utc)
        if abs(now - when) > MAX_SKEW:
            return ("InvalidSignatureException", f"Signature expired: {stamp} is now earlier than "
                    f"{(now - MAX_SKEW).strftime('%Y%m%dT%H%M%SZ')} ({now.strftime('%Y%m%dT%H%M%SZ')} - 15 min.)")
        names = signed.split(";")
        if "host" not in names or stamp[:8] != day:
            return ("InvalidSignatureException", MISMATCH)
        body = _body(environ)
        canonical = "\n".join([
            environ["REQUEST_METHOD"].upper(),
            quote(normalize_url_path(_raw_path(environ)), safe="/~"),
            "&".join(f"{k}={v}" for k, _, v in sorted(p.partition("=") for p in environ.get("QUERY_STRING", "").split("&") if p)),
            "".join(f"{n}:{' '.join(_header(environ, n).split())}\n" for n in names),
            signed,
            environ.get("HTTP_X_AMZ_CONTENT_SHA256") or hashlib.sha256(body).hexdigest(),
        ])
        scope = f"{day}/{region}/{service}/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = f"AWS4{secret}".encode()
        for part in (day, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return None if hmac.compare_digest(expected, signature) else ("InvalidSignatureException", MISMATCH)


def _raw_path(environ: dict) -> str:
    uri = environ.get("REQUEST_URI") or environ.get("RAW_URI") or quote(environ.get("PATH_INFO", "/"))
    return uri.split("?", 1)[0] or "/"


def _header(environ: dict, name: str) -> str:
    key = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}.get(name)
    return environ.get(key or "HTTP_" + name.upper().replace("-", "_"), "")


def _body(environ: dict) -> bytes:
    """Read the body for its hash and put it back for the service behind us."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body
