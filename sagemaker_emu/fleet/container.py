"""The client of SageMaker's container contract: every call from the emulator to an instance
(`POST /invocations`, `GET /ping`, a multi-model container's `/models`, `/kv-events`).

A minimal HTTP/1.1 client: `http.client` parses every response's headers with the `email`
package, a large share of an echo invocation's CPU. Instances answer plain HTTP/1.1 on
loopback, so this client reads the status line, headers and a Content-Length, chunked or
read-to-close body directly. A request body is bytes, or a `FileBody` sent from its file
(an asynchronous input of up to 1 GB never enters memory).
"""

from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from sagemaker_emu.bodies import Body, FileBody, body_length
from sagemaker_emu.errors import CallerGone

MAX_HEADER_BYTES = 64 * 1024


class ProtocolError(OSError):
    """The instance sent something that is not an HTTP/1.1 response."""


WATCH_SLICE_S = 0.05  # how often a waiting call asks whether its caller is still there


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    keep_alive: bool


class Connection:
    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port = host, port
        self.sock: socket.socket | None = None
        self.timeout = timeout
        self._buf = b""
        self._poller: select.poll | None = None  # made once per socket, for _wait_for_data
        self.watch: Callable[[], bool] | None = None  # "has the caller gone?", while one waits on us
        self.at_rest = True  # False from sending a request until its whole answer is read
        self.idle_since = 0.0  # when it went back to its pool

    def stale(self) -> bool:
        """At rest in a pool: has the instance closed it (or sent something unasked)?"""
        if self.sock is None:
            return True
        return bool(self._poll().poll(0))

    def _poll(self) -> select.poll:
        if self._poller is None:  # one per socket: this is on the invoke path
            assert self.sock is not None, "polled only while connected"
            self._poller = select.poll()
            self._poller.register(self.sock, select.POLLIN)
        return self._poller

    def settimeout(self, timeout: float) -> None:
        self.timeout = timeout
        if self.sock is not None:
            self.sock.settimeout(timeout)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self._poller = None
        self._buf = b""

    def send(self, method: str, path: str, body: Body, headers: dict[str, str]) -> None:
        if self.sock is None:
            self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.at_rest = False
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {body_length(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        # UTF-8: a header value is sent as the caller's client sent it (botocore writes UTF-8); a
        # TargetModel may begin with any non-space character, 😀 included, which latin-1 cannot carry
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        if isinstance(body, FileBody):
            self.sock.sendall(head)
            with open(body.path, "rb") as f:
                self.sock.sendfile(f, 0, body.length)  # the kernel copies it: no buffer of ours
        else:
            self.sock.sendall(head + body)

    def _fill(self) -> bool:
        if self.watch is not None:
            self._wait_for_data()
        assert self.sock is not None, "read only after a request was sent"
        data = self.sock.recv(65536)
        self._buf += data
        return bool(data)

    def _wait_for_data(self) -> None:
        """Wait for the instance, and give up soon after the watched caller hangs up.
        poll(), not select(): select() fails on descriptors above 1,023."""
        deadline = time.monotonic() + self.timeout
        poller = self._poll()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("timed out")
            if poller.poll(min(remaining, WATCH_SLICE_S) * 1000):
                return
            if self.watch is not None and self.watch():
                raise CallerGone()

    def _line(self) -> bytes:
        while b"\r\n" not in self._buf:
            if len(self._buf) > MAX_HEADER_BYTES or not self._fill():
                raise ProtocolError("connection closed inside the response head")
        line, self._buf = self._buf.split(b"\r\n", 1)
        return line

    def read_head(self) -> Response:
        while b"\r\n\r\n" not in self._buf:
            if len(self._buf) > MAX_HEADER_BYTES:
                raise ProtocolError("response head too large")
            if not self._fill():
                raise ConnectionResetError("the instance closed the connection before answering")
        head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {status_line!r}")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        keep = parts[0] == "HTTP/1.1" and connection != "close" or connection == "keep-alive"
        framed = "content-length" in headers or "chunked" in headers.get("transfer-encoding", "").lower()
        return Response(int(parts[1]), headers, keep and framed)

    def iter_body(self, response: Response, piecewise: bool = False) -> Iterator[bytes]:
        """The body as it arrives: chunk by chunk when chunked; with `piecewise`, a
        Content-Length body too, as it is received (kept out of memory by a caller that
        writes it to a file)."""
        if "chunked" in response.headers.get("transfer-encoding", "").lower():
            while True:
                size = int(self._line().split(b";", 1)[0], 16)
                if size == 0:
                    while self._line():  # trailers, up to the blank line
                        pass
                    self.at_rest = True
                    return
                while len(self._buf) < size + 2:
                    if not self._fill():
                        raise ProtocolError("connection closed inside a chunk")
                chunk, self._buf = self._buf[:size], self._buf[size + 2:]
                yield chunk
        elif "content-length" in response.headers and piecewise:
            remaining = int(response.headers["content-length"])
            while remaining > 0:
                if not self._buf and not self._fill():
                    raise ProtocolError("connection closed inside the body")
                piece, self._buf = self._buf[:remaining], self._buf[remaining:]
                remaining -= len(piece)
                yield piece
            self.at_rest = True
        elif "content-length" in response.headers:
            remaining = int(response.headers["content-length"])
            while len(self._buf) < remaining:
                if not self._fill():
                    raise ProtocolError("connection closed inside the body")
            body, self._buf = self._buf[:remaining], self._buf[remaining:]
            self.at_rest = True
            yield body
        else:  # no framing: the body ends when the instance closes the connection
            while self._fill():
                pass
            body, self._buf = self._buf, b""
            yield body

    def read_body(self, response: Response) -> bytes:
        return b"".join(self.iter_body(response))


def request(host: str, port: int, method: str, path: str, timeout: float, body: bytes = b"",
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One call on a connection of its own (a health check, a model load): status and body.
    OSError (ProtocolError included) when the container cannot be reached or answers garbage."""
    conn = Connection(host, port, timeout)
    try:
        conn.send(method, path, body, headers or {})
        head = conn.read_head()
        return head.status, conn.read_body(head)
    finally:
        conn.close()
