"""Serve the app with waitress, bounded against hostile callers, and shut down cleanly.

Why waitress (docs/performance.md has the measurements): its event loop reads every request
whole before a thread sees it, so slow or idle sockets cost a descriptor, never a thread;
it parses HTTP/1.1 framing strictly (chunked, Content-Length) and keeps connections alive.
What it lacks is added here, on its documented extension points (channel and server classes):
  - a read timeout for a request that has started but not finished arriving (slowloris),
  - a write timeout for an answer the caller stops reading,
  - errors of the HTTP layer itself answered in AWS's JSON error shape.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import resource
import secrets
import select
import signal
import socket
import sys
import threading
import time

from waitress import trigger as waitress_trigger
from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher

from sagemaker_emu import discovery
from sagemaker_emu.app import MAX_SERVER_BODY_BYTES, build
from sagemaker_emu.config import Config
from sagemaker_emu.edge.auth import SigV4Verifier
from sagemaker_emu.edge.guards import CallerGuard
from sagemaker_emu.protocol.errors import edge_error
from sagemaker_emu.ui import TOKEN_ENV

log = logging.getLogger("sagemaker_emu.server")

MAX_HEADER_BYTES = 64 * 1024  # botocore's heads are a few hundred bytes; AWS refuses far less than 256 KiB
MAX_CONNECTIONS = 10_000  # open sockets; capped below the process's descriptor limit


class _ErrorTask(ErrorTask):
    """Framing errors (bad Content-Length, bad chunks, heads or bodies too large) before any
    service sees the request: AWS's JSON error shape, readable by JSON 1.1 and REST-JSON clients."""

    def execute(self) -> None:
        error = self.request.error
        code = {400: "BadRequestException", 413: "RequestEntityTooLargeException",
                431: "RequestHeaderFieldsTooLargeException", 501: "NotImplemented"}.get(error.code, "InternalFailure")
        self.status, headers, body = edge_error(error.code, code, f"{error.reason}: {error.body}")
        self.response_headers.extend(h for h in headers if h[0] != "Content-Length")
        self.set_close_on_finish()
        self.channel.linger = True
        self.content_length = len(body)
        self.write(body)


LINGER_S = 2.0


class _Linger(wasyncore.dispatcher):
    """After an error answer, read and drop what the caller is still sending for a moment
    before closing, so that it reads our answer rather than a reset (a lingering close)."""

    def __init__(self, sock: socket.socket, map: dict) -> None:
        super().__init__(sock, map)
        self.until = time.monotonic() + LINGER_S

    def writable(self) -> bool:
        return False

    def handle_read(self) -> None:
        self.recv(65536)  # dropped; past `until`, maintenance closes the socket

    def handle_close(self) -> None:  # the caller has finished sending: done
        self.close()


class _Request(HTTPRequestParser):
    """A request that came with both Transfer-Encoding and Content-Length is read by its chunks,
    and its connection closes after the answer (RFC 9112 section 6.1): the two lengths disagree
    about where the next request starts, so nothing after it is read as one (request smuggling)."""

    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        if self.chunked and "CONTENT_LENGTH" in self.headers:
            self.headers["CONNECTION"] = "close"
            self.connection_close = True


_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _Channel(HTTPChannel):
    """Waitress's channel, with the timeouts' bookkeeping, and a caller that half-closes told
    from one that hung up.

    End of stream while a request runs means either: the caller has sent everything and waits
    for its answer (a half-close), or it has gone (a timeout, a crash), and its call to an
    instance should stop. Waitress takes both for gone. Here the connection is asked: an
    interim `100 Continue` (which HTTP/1.1 clients must accept and skip, RFC 9110 section 15.2)
    is sent; a socket closed at the other end answers it with a reset, which the loop sees as a
    hang-up at once, and the call is cancelled as before; a half-closed one takes it, and the
    answer follows. Once an answer has begun, its own bytes are the question."""

    error_task_class = _ErrorTask
    parser_class = _Request
    request_started = 0.0  # when the request still arriving began, for the read timeout
    linger = False  # set once an error answer was sent: the caller may still be sending
    half_closed = False  # the caller will send nothing more and waits for its answer
    answering = False  # bytes of the running request's answer have been queued

    def received(self, data: bytes) -> bool:
        if self.request is None:
            self.request_started = time.monotonic()
        return super().received(data)

    def readable(self) -> bool:
        return not self.half_closed and super().readable()

    def handle_read(self) -> None:
        if not self.requests:  # nothing running: end of stream is the caller leaving
            return super().handle_read()
        try:
            data = self.socket.recv(self.adj.recv_bytes)
        except OSError:
            data = None
        if data:
            self.last_activity = time.time()
            self.received(data)
        elif data == b"" and self._ask_whether_gone():
            self.half_closed = True  # a reset now means gone; the answer closes the connection
        else:
            self.handle_close()

    def _ask_whether_gone(self) -> bool:
        """Send the interim answer that tells a half-close from a hang-up; False if it cannot
        be sent (an HTTP/1.0 caller may not be sent one; the socket failed)."""
        running = self.requests  # the request thread may empty it meanwhile
        if not running or running[0].version != "1.1":
            return False
        with self.outbuf_lock:
            if self.answering or self.total_outbufs_len:
                return True  # bytes are on their way: they ask the same question
            try:
                return self.socket.send(_CONTINUE) == len(_CONTINUE)
            except OSError:
                return False

    def write_soon(self, data) -> int:
        with self.outbuf_lock:  # never after the interim answer has been decided on
            self.answering = self.answering or bool(data)
            return super().write_soon(data)

    def service(self) -> None:
        self.answering = False
        super().service()
        if self.half_closed and not self.requests:
            with self.requests_lock:
                self.close_when_flushed = True  # nothing more will come
            self.server.pull_trigger()

    def handle_close(self) -> None:
        lingering = None
        if self.linger and self.connected and self.socket is not None:
            try:
                lingering = self.socket.dup()
                lingering.shutdown(socket.SHUT_WR)  # our answer is sent, then end of stream
            except OSError:
                lingering = None
        super().handle_close()
        if lingering is not None:
            _Linger(lingering, self._map)


_IN, _OUT = select.POLLIN | select.POLLPRI, select.POLLOUT


class _EpollMap(dict):
    """The loop's descriptor -> dispatcher map, kept registered in one epoll set.

    Waitress's own loop asks every socket whether it wants to read or write on every turn,
    so each event costs time in proportion to the open sockets (2,000 idle ones tripled an
    invoke's latency). Here a socket that only waits for its next request is registered
    once and not asked again until something happens on it. Sockets with a request in
    progress, and the listener and trigger, are asked every turn as before: only their
    state can be changed by other threads, and those threads pull the trigger when they do.
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoll = select.epoll()
        self.registered: dict[int, tuple[object, int]] = {}
        self.recheck: set[int] = set()

    def __setitem__(self, fd: int, obj) -> None:
        super().__setitem__(fd, obj)
        self.recheck.add(fd)

    def __delitem__(self, fd: int) -> None:
        super().__delitem__(fd)
        self.recheck.discard(fd)
        if self.registered.pop(fd, None) is not None:  # before the socket closes: a dup'ed
            try:  # descriptor would keep a closed one's registration alive
                self.epoll.unregister(fd)
            except OSError:
                pass

    def _interest(self, fd: int, obj) -> None:
        flags = (_IN if obj.readable() else 0) | (_OUT if obj.writable() and not obj.accepting else 0)
        old = self.registered.get(fd)
        if old is None or old[0] is not obj or old[1] != flags:
            if old is not None:
                self.epoll.unregister(fd)
            self.epoll.register(fd, flags)  # flags 0 still reports hang-ups, which is wanted
            self.registered[fd] = (obj, flags)
        quiet = (isinstance(obj, HTTPChannel) and flags == _IN and obj.connected and not obj.requests
                 and not (obj.will_close or obj.close_when_flushed or obj.total_outbufs_len))
        if quiet:
            self.recheck.discard(fd)

    def turn(self, timeout: float) -> None:
        for fd in list(self.recheck):
            obj = self.get(fd)
            if obj is not None:
                self._interest(fd, obj)
        try:
            events = self.epoll.poll(timeout)
        except InterruptedError:
            return
        for fd, flags in events:
            obj = self.get(fd)
            if obj is not None:
                self.recheck.add(fd)
                wasyncore.readwrite(obj, flags)


class _Loop:
    """What waitress calls its `asyncore`: the dispatcher class and the loop over a map."""

    dispatcher = wasyncore.dispatcher

    @staticmethod
    def loop(timeout: float = 30.0, use_poll: bool = False, map: dict | None = None, count=None) -> None:
        if not isinstance(map, _EpollMap):
            return wasyncore.loop(timeout, use_poll, map, count)
        try:
            while map:
                map.turn(timeout)
        finally:
            map.epoll.close()


class _Trigger(waitress_trigger.trigger):
    """Waitress's wake-up pipe, made safe to pull after it was closed.

    A request thread pulls it when it finishes an answer. One still finishing when the server
    stops would write to a closed descriptor (EBADF, logged with a traceback) or, worse, to
    whatever file has since been given that number. Pulling and closing exclude each other,
    and a pull after the close does nothing: the loop it would wake has ended.
    """

    def __init__(self, map: dict) -> None:
        self._pull_lock = threading.Lock()  # not `self.lock`: that one is held while thunks run
        super().__init__(map)

    def _physical_pull(self) -> None:
        with self._pull_lock:
            if not self._closed:
                super()._physical_pull()

    def close(self) -> None:
        with self._pull_lock:
            super().close()


class _Server(TcpWSGIServer):
    channel_class = _Channel
    asyncore = _Loop
    config = Config()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.trigger.close()  # type: ignore[has-type]  # waitress builds its own; ours replaces it before the loop
        self.trigger = _Trigger(self._map)

    def maintenance(self, now: float) -> None:
        """Waitress closes idle sockets; also close those stuck mid-request or mid-answer."""
        super().maintenance(now)
        mono = time.monotonic()
        for channel in list(self._map.values()):
            if isinstance(channel, _Linger):
                if mono > channel.until:
                    channel.close()
                continue
            if not isinstance(channel, HTTPChannel):
                continue  # the listener and the trigger
            arriving = channel.request is not None and not channel.request.completed
            if arriving and mono - channel.request_started > self.config.read_timeout:
                if channel.request.headers_finished and _ROUTER_CALL.match(channel.request.path or ""):
                    _answer_timeout(channel)  # the router runtime documents an answer: 408
                channel.will_close = True
            elif channel.requests and channel.total_outbufs_len and \
                    now - channel.last_activity > self.config.write_timeout:
                # The caller stopped reading. Close now: a full socket never turns writable, so
                # waitress would never act on will_close, and the request thread (and the
                # instance's slot behind it) would wait for ever. Closing wakes that thread.
                channel.handle_close()
                continue
            if channel.will_close and isinstance(self._map, _EpollMap):
                self._map.recheck.add(channel._fileno)  # the loop acts on will_close


_ROUTER_CALL = re.compile(r"^/inference-routers/[^/]+/(async-)?invocations$")


def _answer_timeout(channel: _Channel) -> None:
    """RequestTimeoutException (408): an inference router's answer to a body that did not
    arrive in time; then the connection closes (lingering: the caller may still be sending)."""
    status, headers, body = edge_error(408, "RequestTimeoutException", "The inference router didn't receive the "
                                       "complete request in time. Retry the request.")
    head = "".join(f"{name}: {value}\r\n" for name, value in headers if name.lower() != "connection")
    channel.write_soon(f"HTTP/1.1 {status}\r\n{head}Connection: close\r\n\r\n".encode("latin-1") + body)
    channel.linger = True
    channel.close_when_flushed = True


def _descriptor_budget(wanted: int) -> int:
    """Raise the soft descriptor limit to the hard one; keep half for instances and files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return max(64, min(wanted, soft // 2))


class StartError(Exception):
    """The server cannot start: the message says why and what to do, in one line."""


def _bind_failure(config: Config, exc: OSError) -> str:
    where = f"port {config.port} on {config.host}"
    if exc.errno == errno.EADDRINUSE:
        return (f"{where} is in use (by another sagemaker-emu? `sagemaker-emu env` finds it); choose another "
                f"with --port N (make run PORT=N), or --port 0 for a free one")
    if exc.errno == errno.EACCES:
        return f"may not listen on {where} (ports below 1024 need privileges); choose another with --port N"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{config.host} is not an address of this machine; choose one with --host (default 127.0.0.1)"
    return f"cannot listen on {where}: {exc.strerror or exc}"


class EmulatorHTTPServer:
    """The HTTP server and the app behind it; `port=0` binds an ephemeral port."""

    def __init__(self, config: Config) -> None:
        verifier = SigV4Verifier.from_file(config.credentials) if config.credentials else None
        self.emulator = build(config, verifier.any_key() if verifier else None)
        adj = Adjustments(
            host=config.host, port=config.port, threads=config.http_threads,
            connection_limit=_descriptor_budget(MAX_CONNECTIONS),
            channel_timeout=max(1, int(config.idle_timeout)),
            cleanup_interval=1,  # how often the timeouts above are checked
            asyncore_use_poll=True,  # select() cannot watch descriptors above 1,023
            channel_request_lookahead=1,  # keeps reading, so a caller hanging up is seen at once
            max_request_header_size=MAX_HEADER_BYTES, max_request_body_size=MAX_SERVER_BODY_BYTES,
            outbuf_high_watermark=1024 * 1024, ident="sagemaker-emu", expose_tracebacks=False,
            clear_untrusted_proxy_headers=True, log_socket_errors=False,
        )
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.set_thread_count(adj.threads)
        loop_map = _EpollMap() if hasattr(select, "epoll") else {}  # epoll: Linux; elsewhere poll()
        # With --auth sigv4, the live view's page proves itself with a token instead (edge/guards.py)
        self.ui_token = (os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)) if verifier else None
        guarded = CallerGuard(self.emulator.wsgi, config.allowed_hosts, verifier, self.ui_token)  # who may call
        try:
            self.httpd = _Server(guarded, map=loop_map, dispatcher=dispatcher, adj=adj, sockinfo=adj.listen[0])
        except OSError as exc:
            dispatcher.shutdown()
            self.emulator.shutdown()
            raise StartError(_bind_failure(config, exc)) from None
        self.httpd.config = config
        self._stopped = threading.Event()
        self.emulator.serving_at(self.local_url)

    @property
    def url(self) -> str:
        host, port = self.httpd.effective_host, self.httpd.effective_port
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def local_url(self) -> str:
        """How this process reaches the server (a wildcard address is reached on loopback)."""
        bound = str(self.httpd.effective_host)
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(bound, bound)
        port = self.httpd.effective_port
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def serve_forever(self) -> None:
        try:
            self.httpd.run()
        except OSError:
            if not self._stopped.is_set():  # closing sockets under the loop ends it with an error
                raise
        finally:
            self._stopped.set()

    def stop_serving(self) -> None:
        """Stop accepting and close every connection; the loop returns. Callable from any thread."""
        def close_all() -> None:  # runs on the loop's own thread
            for channel in list(self.httpd._map.values()):
                channel.close()

        if not self._stopped.is_set():  # once the loop has closed the trigger, pulling does nothing
            self.httpd.trigger.pull_trigger(close_all)
        self.httpd.task_dispatcher.shutdown(cancel_pending=True, timeout=5)

    def shutdown(self) -> None:
        """Stop accepting calls, then stop every fleet."""
        self.stop_serving()
        self.emulator.shutdown()


# Set by the harness (testing.EmulatorProcess): a server started for a test or a benchmark
# stops, with its workers, when the process that started it goes, however that one ended.
EXIT_WITH_PARENT = "SAGEMAKER_EMU_EXIT_WITH_PARENT"


def _watch_parent(parent_pid: int, stop) -> None:
    def loop() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        log.info("the process that started the server has gone; stopping")
        stop()

    threading.Thread(target=loop, daemon=True, name="parent-watch").start()


def serve(config: Config, announce=print, bootstrap: str | None = None) -> int:
    try:
        server = EmulatorHTTPServer(config)
    except StartError as exc:
        print(f"sagemaker-emu: {exc}", file=sys.stderr)
        return 1
    if bootstrap:
        from sagemaker_emu.bootstrap import BootstrapError, apply

        try:
            names = apply(server.emulator, bootstrap)
        except (BootstrapError, OSError, ValueError) as exc:
            log.error("bootstrap failed: %s", exc)
            server.httpd.close()
            server.emulator.shutdown()
            return 1
        log.info("bootstrap: %d endpoint(s) InService: %s", len(names), ", ".join(names) or "-")

    def on_signal(signum, frame):  # the loop must be stopped from another thread
        threading.Thread(target=server.stop_serving, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # A user's server is recorded for `sagemaker-emu env` and `logs`; one a harness started for a
    # test or a benchmark (it exits with its parent) is not, so it is never the one they find.
    harnessed = bool(os.environ.get(EXIT_WITH_PARENT))
    if harnessed:
        _watch_parent(os.getppid(), server.stop_serving)
    recorded = None if harnessed else discovery.register(server.local_url)
    announce(f"sagemaker-emu listening on {server.url}", flush=True)
    log.info("live view: %s/_emu/ui%s", server.url, f"?token={server.ui_token}" if server.ui_token else "")
    try:
        server.serve_forever()
    finally:
        discovery.unregister(recorded)
        server.emulator.shutdown()
        log.info("stopped")
    return 0
