"""Who may call: the checks every request passes before any service sees it.

- `Host` must be an IP address, `localhost` (or a name under it) or a name the user
  configured (`serve --allowed-host`): a DNS-rebinding page reaches us under its own name.
- `Origin`, which browsers send and AWS SDKs never do, must be our own origin: a page from
  elsewhere cannot post to the API, `/_emu` included (no cross-site request forgery).
- The SigV4 credential scope must name a real region, so that strings cannot create backends.
- With `--auth sigv4`, the signature is checked against the configured keys
  (`auth.py`); otherwise any signature, or none, is accepted, as by moto and LocalStack. A
  browser cannot sign: on `/_emu/` only, the live view's token (`?token=` on the page itself,
  then the cookie the page is given) stands in for a signature.

Each failure is answered in AWS's error shape, in the caller's protocol, with HTTP 403 (400
for a body that does not match its declared hash, or a presigned URL missing a part).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs
from typing import Callable, Iterable
from urllib.parse import urlsplit

from sagemaker_emu.edge.auth import STATUS, SigV4Verifier
from sagemaker_emu.protocol import bearer
from sagemaker_emu.protocol.context import region_of
from sagemaker_emu.protocol.errors import edge_error, request_id
from sagemaker_emu.protocol.openai import error as openai_error
from sagemaker_emu.protocol.openai import is_openai_path
from sagemaker_emu.protocol.services import signing_service
from sagemaker_emu.service_model import known_regions
from sagemaker_emu.ui import COOKIE

log = logging.getLogger("sagemaker_emu.edge")


def _hostname(host: str) -> str:
    """`name[:port]` or `[v6]:port` -> the name, lower-case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _ui_token(environ: dict) -> str | None:
    """The live view's token a request to /_emu/ carries: in the page's own URL, or its cookie."""
    path = environ.get("PATH_INFO", "")
    if not path.startswith("/_emu/"):
        return None
    if path in ("/_emu/ui", "/_emu/ui/"):
        given = parse_qs(environ.get("QUERY_STRING", "")).get("token")
        if given:
            return given[0]
    try:
        cookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
    except CookieError:
        return None
    return cookie[COOKIE].value if COOKIE in cookie else None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class CallerGuard:
    """WSGI middleware in front of every service."""

    def __init__(self, app: Callable, allowed_hosts: Iterable[str] = (), verifier: SigV4Verifier | None = None,
                 ui_token: str | None = None) -> None:
        self.app = app
        self.ui_token = ui_token
        self.names = {h.lower() for h in allowed_hosts} | {"localhost"}
        self.verifier = verifier
        self._good_hosts: set[str] = set()  # Host headers seen to pass (at most a few)

    def host_allowed(self, host: str) -> bool:
        if host in self._good_hosts:
            return True
        name = _hostname(host)
        ok = bool(name) and (name in self.names or name.endswith(".localhost") or _is_ip(name))
        if ok and len(self._good_hosts) < 64:
            self._good_hosts.add(host)
        return ok

    def refusal(self, environ: dict) -> tuple[str, str] | None:
        """(code, message) when the request must be refused, else None."""
        host = environ.get("HTTP_HOST", "")
        if not self.host_allowed(host):
            return ("AccessDeniedException", f"sagemaker-emu does not answer requests for host '{host[:200]}'. "
                    "Use its address, localhost, or a name given with --allowed-host.")
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and urlsplit(origin).netloc.lower() != host.lower():
            return ("AccessDeniedException", f"Cross-origin requests are not accepted (Origin '{origin[:200]}').")
        authorization = environ.get("HTTP_AUTHORIZATION")
        token = bearer.bearer(authorization)
        if token is not None:
            return self._bearer_refusal(environ, token)
        if authorization:
            region = region_of(authorization, "")
            if region and region not in known_regions():
                return ("InvalidSignatureException",
                        f"Credential should be scoped to a valid region, not '{region[:64]}'.")
        if self.verifier is not None:
            token = _ui_token(environ) if self.ui_token else None
            if token is not None and hmac.compare_digest(token.encode(), (self.ui_token or "").encode()):
                return None  # the live view, on /_emu/ only
            return self.verifier.refusal(environ)
        return None

    def _bearer_refusal(self, environ: dict, token: str) -> tuple[str, str] | None:
        """A SageMaker bearer token: on the OpenAI-compatible path only, well formed, in a real
        region, and (with --auth sigv4) signed by a known key and not expired."""
        if not is_openai_path(environ.get("PATH_INFO", "")):
            return ("IncompleteSignatureException", "Bearer tokens are accepted on the OpenAI-compatible path "
                    "(/endpoints/<name>/openai/v1/chat/completions) only; sign other calls with SigV4.")
        try:
            parsed = bearer.parse(token)
        except bearer.MalformedToken as exc:
            return ("IncompleteSignatureException", str(exc))
        if parsed.region not in known_regions():
            return ("InvalidSignatureException", f"Credential should be scoped to a valid region, not "
                    f"'{parsed.region[:64]}'.")
        return self.verifier.bearer_refusal(parsed) if self.verifier is not None else None

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        refused = self.refusal(environ)
        if refused is None:
            return self.app(environ, start_response)
        code, message = refused
        log.info("%s %s refused: %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO", "")[:200], code, message)
        if is_openai_path(environ.get("PATH_INFO", "")):  # OpenAI clients read their own envelope
            status, headers, body = openai_error(STATUS.get(code, 403), "authentication_error", code, message,
                                                 request_id())
        else:
            status, headers, body = edge_error(STATUS.get(code, 403), code, message, signing_service(environ),
                                               environ.get("CONTENT_TYPE", ""))
        start_response(status, headers)
        return [body]
