"""What an instance's prefix (KV) cache holds, as its `GET /kv-events` reports it.

The fleet applies an instance's events (BlockStored, BlockRemoved, or a full snapshot when
it fell behind) to a set of block hashes that the KV_AWARE strategy reads. A container that
answers 404 reports nothing, and KV_AWARE treats it as holding nothing.

Fetching the events after every call doubled the requests each instance served. Instead, a
finished call adds its prompt's blocks at once (the container cached them while prefilling,
as SGLang's cache-aware router also assumes), and the events, which alone tell evictions,
are fetched at most every `SYNC_INTERVAL_S` per instance.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Sequence

from sagemaker_emu.fleet.http1 import Connection
from sagemaker_emu.kvcache import DEFAULT_BLOCK_TOKENS

log = logging.getLogger("sagemaker_emu.fleet")
SYNC_TIMEOUT_S = 2.0
SYNC_INTERVAL_S = 0.1


class KvState:
    def __init__(self) -> None:
        # Mutated in place under the GIL: readers only test membership, which is safe.
        self.blocks: set[str] = set()
        self.occupancy = 0
        self.capacity = 0
        self.block_tokens = DEFAULT_BLOCK_TOKENS  # prompt tokens per block, as the instance reports
        self.supported: bool | None = None  # unknown until the first sync
        self._last = 0
        self._synced_at = float("-inf")
        self._lock = threading.Lock()
        self._conn: Connection | None = None  # kept open: a connection per sync cost as much as the sync

    def reset(self) -> None:
        """A restarted instance starts with an empty cache and a new event sequence."""
        with self._lock:
            self.blocks, self.occupancy, self._last, self.supported = set(), 0, 0, None
            self.block_tokens = DEFAULT_BLOCK_TOKENS
            self._synced_at = float("-inf")
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def served(self, prompt_blocks: Sequence[str], host: str, port: int) -> None:
        """After a call that succeeded: its prompt is cached now. Fetch the events if due
        (they include this prompt's blocks), else add the blocks without asking."""
        if self.supported is None or time.monotonic() - self._synced_at >= SYNC_INTERVAL_S:
            self.sync(host, port)
        elif self.supported:
            self.blocks.update(prompt_blocks)

    def sync(self, host: str, port: int) -> None:
        """Fetch and apply the events after the last one seen. Errors leave the state as it was."""
        if self.supported is False:
            return
        with self._lock:
            self._synced_at = time.monotonic()
            if self._conn is None or (self._conn.host, self._conn.port) != (host, port):
                self._conn = Connection(host, port, timeout=SYNC_TIMEOUT_S)
            conn = self._conn
            try:
                conn.send("GET", f"/kv-events?after={self._last}", b"", {})
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
                self.supported = False
                return
            if head.status != 200:
                return
            self.supported = True
            self._apply(json.loads(body))

    def _apply(self, report: dict) -> None:
        if report.get("snapshot") is not None:
            self.blocks = set(report["snapshot"])  # replaced whole: readers never see it half-built
        blocks = self.blocks
        for event in report.get("events", []):
            if event["type"] == "BlockStored":
                blocks.update(event["block_hashes"])
            elif event["type"] == "BlockRemoved":
                blocks.difference_update(event["block_hashes"])
            elif event["type"] == "AllBlocksCleared":
                blocks.clear()
        self.occupancy = report.get("occupancy", len(blocks))
        self.capacity = report.get("capacity", 0)
        self.block_tokens = report.get("block_tokens", DEFAULT_BLOCK_TOKENS)
        self._last = report.get("last", self._last)
