"""Keep-alive HTTP connections to one instance, reused across invocations."""

from __future__ import annotations

import threading

from sagemaker_emu.fleet.http1 import Connection


class ConnectionPool:
    def __init__(self, host: str, port: int, max_idle: int = 64) -> None:
        self.host = host
        self.port = port
        self.max_idle = max_idle
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def acquire(self, timeout: float) -> tuple[Connection, bool]:
        """A connection and whether it was reused (a reused one may have gone stale)."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is not None:
            conn.settimeout(timeout)
            return conn, True
        return Connection(self.host, self.port, timeout=timeout), False

    def release(self, conn: Connection, reusable: bool) -> None:
        if reusable:
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
