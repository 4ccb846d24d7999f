"""Serve the app with Werkzeug's threaded server and shut down cleanly."""

from __future__ import annotations

import logging
import signal
import threading

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from sagemaker_emu.app import create_app, shutdown
from sagemaker_emu.config import Config

log = logging.getLogger("sagemaker_emu.server")


class _KeepAliveHandler(WSGIRequestHandler):
    # HTTP/1.1 keeps boto3's pooled connections open between calls.
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40-ms delayed ACK

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # every call already has our own log line; Werkzeug's costs ~30 us even when silenced


class EmulatorHTTPServer:
    """The HTTP server and the app behind it; `port=0` binds an ephemeral port."""

    def __init__(self, config: Config) -> None:
        self.app = create_app(config)
        self.httpd: BaseWSGIServer = make_server(
            config.host, config.port, self.app, threaded=True, request_handler=_KeepAliveHandler
        )
        self.httpd.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def shutdown(self) -> None:
        """Stop accepting calls, then stop every fleet."""
        self.httpd.shutdown()
        self.httpd.server_close()
        shutdown(self.app)


def serve(config: Config, announce=print, bootstrap: str | None = None) -> int:
    server = EmulatorHTTPServer(config)
    if bootstrap:
        from sagemaker_emu.bootstrap import BootstrapError, apply

        try:
            names = apply(server.app, bootstrap)
        except (BootstrapError, OSError, ValueError) as exc:
            log.error("bootstrap failed: %s", exc)
            server.httpd.server_close()
            shutdown(server.app)
            return 1
        log.info("bootstrap: %d endpoint(s) InService: %s", len(names), ", ".join(names) or "-")

    def on_signal(signum, frame):  # serve_forever must be stopped from another thread
        threading.Thread(target=server.httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    announce(f"sagemaker-emu listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.httpd.server_close()
        shutdown(server.app)
        log.info("stopped")
    return 0
