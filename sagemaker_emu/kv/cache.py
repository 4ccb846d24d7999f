"""The container-side prefix cache (llm-sim's): least recently used blocks evicted first,
every change logged as a vLLM-style event for `GET /kv-events` (format in `events.py`)."""

from __future__ import annotations

import collections
import threading

from sagemaker_emu.kv import events
from sagemaker_emu.kv.blocks import DEFAULT_BLOCK_TOKENS


class BlockCache:
    """At most `capacity` blocks, least recently used evicted first, every change logged as a
    vLLM-style event (BlockStored / BlockRemoved) with a sequence number."""

    def __init__(self, capacity: int, block_tokens: int = DEFAULT_BLOCK_TOKENS, max_events: int = 10000) -> None:
        self.capacity = capacity
        self.block_tokens = block_tokens  # reported with the events: routers must hash prompts alike
        self._blocks: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._events: collections.deque[dict] = collections.deque(maxlen=max_events)
        self._seq = 0
        # prompt tokens looked up and found, since the start (vLLM's prefix_cache_queries and
        # prefix_cache_hits): the live view's hit rate
        self.queried_tokens = self.hit_tokens = 0
        self._lock = threading.Lock()

    def hit_blocks(self, hashes: list[str]) -> int:
        """How many leading blocks of `hashes` are cached."""
        with self._lock:
            return self._leading(hashes)

    def lookup(self, hashes: list[str], prompt_tokens: int) -> int:
        """`hit_blocks` for a prompt being prefilled, counted in the hit rate."""
        with self._lock:
            n = self._leading(hashes)
            if self.capacity:
                self.queried_tokens += prompt_tokens
                self.hit_tokens += min(prompt_tokens, n * self.block_tokens)
            return n

    def _leading(self, hashes: list[str]) -> int:
        n = 0
        for h in hashes:
            if h not in self._blocks:
                break
            n += 1
        return n

    def store(self, hashes: list[str]) -> None:
        """Cache (or refresh) the blocks of a prompt that was just prefilled."""
        stored: list[str] = []
        removed: list[str] = []
        with self._lock:
            for h in hashes:
                if h in self._blocks:
                    self._blocks.move_to_end(h)
                else:
                    self._blocks[h] = None
                    stored.append(h)
            while len(self._blocks) > self.capacity:
                evicted, _ = self._blocks.popitem(last=False)
                removed.append(evicted)
            if stored:
                self._log({"type": events.STORED, "block_hashes": stored})
            if removed:
                self._log({"type": events.REMOVED, "block_hashes": removed})

    def _log(self, event: dict) -> None:
        self._seq += 1
        self._events.append({"seq": self._seq, **event})

    def events_after(self, seq: int) -> dict:
        """The report of events after `seq`; a consumer that fell behind the log gets a snapshot."""
        with self._lock:
            oldest = self._events[0]["seq"] if self._events else self._seq + 1
            if seq < oldest - 1:
                snapshot, logged = list(self._blocks), []
            else:
                snapshot, logged = None, [e for e in self._events if e["seq"] > seq]
            return events.report(self._seq, snapshot, logged, len(self._blocks), self.capacity, self.block_tokens,
                                 (self.queried_tokens, self.hit_tokens))
