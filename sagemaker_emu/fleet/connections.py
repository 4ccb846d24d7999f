"""Keep-alive HTTP connections to one instance, reused across invocations.

A request is sent at most once (POST /invocations is not idempotent), so a connection is
checked before it is reused: one the instance has closed, or one idle long enough that a
server's keep-alive timeout may close it under us (gunicorn's is 2 s), is dropped instead.
"""

from __future__ import annotations

import threading
import time

from sagemaker_emu.fleet.container import Connection

MAX_IDLE_S = 1.0


class ConnectionPool:
    def __init__(self, host: str, port: int, max_idle: int = 64) -> None:
        self.host = host
        self.port = port
        self.max_idle = max_idle
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def acquire(self, timeout: float) -> Connection:
        """A live kept-alive connection, or a new one (connected when the request is sent)."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return Connection(self.host, self.port, timeout=timeout)
            if time.monotonic() - conn.idle_since < MAX_IDLE_S and not conn.stale():
                conn.settimeout(timeout)
                return conn
            conn.close()

    def release(self, conn: Connection, reusable: bool) -> None:
        if reusable:
            conn.idle_since = time.monotonic()
            with self._lock:
                if not self._closed and len(self._idle) < self.max_idle:
                    self._idle.append(conn)
                    return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
