"""moto's backends, in this process, behind moto's own server-mode WSGI apps.

moto is the field's well-kept implementation of these services; its server mode (what
`moto_server` runs) turns HTTP requests into backend calls, so a request that reaches us here
gets the answer moto_server would give. We serve only the services listed in `SERVICES`,
one Flask app per service made on first use, as moto's `DomainDispatcherApplication` does.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Iterable

from sagemaker_emu.neighbours.identity_defaults import IamDefaults, StsDefaults
from sagemaker_emu.neighbours.s3_streaming import StreamingGets
from sagemaker_emu.protocol.errors import edge_error, request_id

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

                    flask_app = create_backend_app(backend)
                    flask_app.debug = False  # moto turns it on; an error must not reach the caller as a page
                    inner = flask_app.wsgi_app
                    if service == "iam":  # roles the SDK names exist; its policy simulation allows
                        inner = IamDefaults(inner, self.account)
                    elif service == "sts":  # the dummy key's caller is a role, as the SDK expects
                        inner = StsDefaults(inner, self.account)
                    elif service == "s3":  # large objects leave as a stream, not a copy in memory
                        inner = StreamingGets(inner, self.account)
                    app = self._apps[backend] = _Shielded(inner, service, self.account)
        return app

    def reset(self) -> None:
        """Forget every bucket, object, topic, queue, role... of every account and region."""
        from moto.backends import get_backend

        for backend in SERVICES.values():
            for account in list(get_backend(backend).values()):
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
        except Exception:
            log.exception("the embedded %s service failed on %s %s", self.service,
                          environ.get("REQUEST_METHOD"), environ.get("PATH_INFO", "")[:200])
            message = f"The embedded {self.service} service failed."
            if self.service == "sqs":  # botocore speaks JSON to SQS, XML to the others
                status, headers, body = edge_error(500, "InternalFailure", message)
            else:
                body = (f"<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>{message}"
                        f"</Message></Error><RequestId>{request_id()}</RequestId></ErrorResponse>").encode()
                status, headers = "500 Internal Server Error", [("Content-Type", "text/xml"),
                                                                ("Content-Length", str(len(body)))]
            start_response(status, headers)
            return [body]
