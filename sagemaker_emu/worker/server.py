"""The container-contract HTTP server: `GET /ping`, `POST /invocations`, HTTP/1.1 keep-alive.

A plain `http.server` rather than Flask: it sits on every invocation's path, and a thread
per connection with no routing layer is the leanest thing that keeps connections open.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

from sagemaker_emu.worker.contract import Invocation, Model, Reply

log = logging.getLogger("sagemaker_emu.worker")
_MODEL_INVOKE = re.compile(r"/models/([^/]+)/invoke")  # a multi-model container's invocation
CHAT_PATH = "/v1/chat/completions"  # OpenAI's Chat Completions, for the models that serve it
_NO_CHAT = Reply(status=404, body=json.dumps({"error": {
    "message": f"This container does not serve POST {CHAT_PATH}: its model answers POST /invocations only. "
               "Serve OpenAI's Chat Completions there (an --image-map command, or an image whose server has it) "
               "to call it on SageMaker's OpenAI-compatible path.",
    "type": "invalid_request_error", "code": "not_found"}}).encode())


def _peer_gone(sock: socket.socket) -> bool:
    """True when the client closed its side. A non-blocking peek, not select(): select()
    fails on descriptors above 1,023."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


class ContainerServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], model: Model) -> None:
        self.model = model
        # SAGEMAKER_MODEL_SERVER_WORKERS: requests beyond it wait here, as in the toolkit's server.
        self.slots = threading.BoundedSemaphore(model.concurrency) if model.concurrency else None
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40-ms delayed ACK
    server: ContainerServer

    def log_message(self, format: str, *args) -> None:  # access logs would drown the model's own
        pass

    def do_GET(self) -> None:
        if self.path != "/ping":
            path, _, query = self.path.partition("?")
            reply = self.server.model.get(path, dict(parse_qsl(query)))  # llm-sim's /kv-events
            return self._send(reply or Reply(status=404, body=b'{"message": "not found"}'))
        healthy = self.server.model.healthy()
        self._send(Reply(status=200 if healthy else 503, body=b"" if healthy else b'{"status": "unhealthy"}'))

    def do_DELETE(self) -> None:
        self._send(self.server.model.delete(self.path) or Reply(status=404, body=b'{"message": "not found"}'))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        chat = self.path == CHAT_PATH
        match = None if self.path == "/invocations" or chat else _MODEL_INVOKE.fullmatch(self.path)
        if self.path != "/invocations" and not chat and match is None:  # a multi-model container's POST /models
            return self._send(self.server.model.post(self.path, body) or Reply(status=404, body=b'{"message": "not found"}'))
        invocation = Invocation(
            body=body,
            content_type=self.headers.get("Content-Type"),
            accept=self.headers.get("Accept"),
            custom_attributes=self.headers.get("X-Amzn-SageMaker-Custom-Attributes"),
            headers={k.lower(): v for k, v in self.headers.items()},
            connected=lambda: not _peer_gone(self.connection),
            model_name=match.group(1) if match else None,
        )
        slots = self.server.slots
        if slots is not None:
            slots.acquire()
        try:
            reply = (self.server.model.chat(invocation) or _NO_CHAT) if chat else self.server.model.invoke(invocation)
        except Exception as exc:  # the toolkit answers a handler's exception with a 500
            log.exception("invocation failed")
            where = os.environ.get("SAGEMAKER_EMU_ENDPOINT", "<endpoint>")
            text = f"{type(exc).__name__}: {exc} (the traceback is in the instance log: sagemaker-emu logs {where})"
            reply = Reply(status=500, body=text.encode(), content_type="text/plain")
        finally:
            if slots is not None:
                slots.release()
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            if reply.custom_attributes is not None:
                self.send_header("X-Amzn-SageMaker-Custom-Attributes", reply.custom_attributes)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if isinstance(reply.body, (bytes, bytearray)):
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            else:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for chunk in reply.body:
                        if chunk:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                            self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    raise
                except Exception:
                    # The model failed mid-answer: end the connection without the final chunk,
                    # so the caller sees a broken stream rather than a short but whole answer.
                    log.exception("the response stream failed")
                    self.close_connection = True
                    return
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            close = getattr(reply.body, "close", None)
            if close is not None:  # a generator stops generating when its reader is gone
                close()
