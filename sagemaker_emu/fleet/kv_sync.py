"""Keeping an instance's `KvIndex` (sagemaker_emu/kv/index.py) up to date from its
`GET /kv-events`, over a kept-open connection.

Fetching the events after every call doubled the requests each instance served. Instead a
finished call adds its prompt's blocks to the index at once, and the events, which alone
tell evictions, are fetched at most every `SYNC_INTERVAL_S` per instance. A container that
answers 404 is asked once and holds nothing as far as KV_AWARE knows.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Sequence

from sagemaker_emu.fleet.container import Connection
from sagemaker_emu.kv import events
from sagemaker_emu.kv.index import KvIndex

log = logging.getLogger("sagemaker_emu.fleet")
SYNC_TIMEOUT_S = 2.0
SYNC_INTERVAL_S = 0.1


class KvSync:
    def __init__(self, index: KvIndex) -> None:
        self.index = index
        self._synced_at = float("-inf")
        self._lock = threading.Lock()
        self._conn: Connection | None = None  # kept open: a connection per sync cost as much as the sync

    def reset(self) -> None:
        with self._lock:
            self.index.reset()
            self._synced_at = float("-inf")
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def served(self, prompt_blocks: Sequence[str], host: str, port: int) -> None:
        """After a call that succeeded: its prompt is cached now. Fetch the events if due
        (they include this prompt's blocks), else add the blocks without asking."""
        if self.index.supported is None or time.monotonic() - self._synced_at >= SYNC_INTERVAL_S:
            self.sync(host, port)
        else:
            self.index.served(prompt_blocks)

    def refresh(self, host: str, port: int, max_age_s: float) -> None:
        """Fetch the events if none were fetched for `max_age_s` (the live view's hit rates)."""
        if time.monotonic() - self._synced_at >= max_age_s:
            self.sync(host, port)

    def sync(self, host: str, port: int) -> None:
        """Fetch and apply the events after the last one seen. Errors leave the index as it was."""
        if self.index.supported is False:
            return
        with self._lock:
            self._synced_at = time.monotonic()
            if self._conn is None or (self._conn.host, self._conn.port) != (host, port):
                self._conn = Connection(host, port, timeout=SYNC_TIMEOUT_S)
            conn = self._conn
            try:
                conn.send("GET", f"{events.PATH}?after={self.index.last}", b"", {})
                head = conn.read_head()
                body = conn.read_body(head)
            except OSError as exc:
                log.debug("kv-events from %s:%d failed: %s", host, port, exc)
                conn.close()
                self._conn = None
                return
            if not head.keep_alive:
                conn.close()
                self._conn = None
            if head.status == 404:
                self.index.supported = False
            elif head.status == 200:
                self.index.apply(json.loads(body))
