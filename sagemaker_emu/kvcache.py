"""Prefix (KV) cache blocks as vLLM's prefix caching names them, shared by llm-sim (which
keeps a cache) and the KV_AWARE router (which predicts hits from the cache's events).

A prompt is cut into blocks of `block_tokens` tokens; block i's hash covers its tokens and
block i-1's hash, so equal hashes mean equal prompts up to the end of that block. Only full
blocks are cached.
"""

from __future__ import annotations

import collections
import hashlib
import re
import threading

_TOKEN = re.compile(r"\w+|[^\w\s]")
DEFAULT_BLOCK_TOKENS = 16


def tokens(text: str) -> list[str]:
    """A tokenizer-free stand-in: words and punctuation marks (`\\w+|[^\\w\\s]`).

    Splitting on white space first and running the pattern only on pieces that are not plain
    words gives the same tokens several times faster (`\\w` is `isalnum()` plus `_`); ASCII
    text of plain words, the common case, is checked in one pass over its bytes."""
    pieces = text.split()
    joined = "".join(pieces)
    if joined.isascii() and joined.encode().isalnum():  # bytes.isalnum: ASCII only, table-driven
        return pieces
    out: list[str] = []
    for piece in pieces:
        if piece.isalnum():
            out.append(piece)
        else:
            out.extend(_TOKEN.findall(piece))
    return out


def block_hashes(toks: list[str], block_tokens: int = DEFAULT_BLOCK_TOKENS) -> list[str]:
    out: list[str] = []
    parent = b""
    for start in range(0, len(toks) - block_tokens + 1, block_tokens):
        # sha1 cut to 64 bits: a third cheaper than blake2b here, and collisions only fake a hit
        parent = hashlib.sha1(parent + "\x1f".join(toks[start:start + block_tokens]).encode()).digest()[:8]
        out.append(parent.hex())
    return out


class BlockCache:
    """At most `capacity` blocks, least recently used evicted first, every change logged as a
    vLLM-style event (BlockStored / BlockRemoved) with a sequence number."""

    def __init__(self, capacity: int, block_tokens: int = DEFAULT_BLOCK_TOKENS, max_events: int = 10000) -> None:
        self.capacity = capacity
        self.block_tokens = block_tokens  # reported with the events: routers must hash prompts alike
        self._blocks: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._events: collections.deque[dict] = collections.deque(maxlen=max_events)
        self._seq = 0
        self._lock = threading.Lock()

    def hit_blocks(self, hashes: list[str]) -> int:
        """How many leading blocks of `hashes` are cached."""
        with self._lock:
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
                self._log({"type": "BlockStored", "block_hashes": stored})
            if removed:
                self._log({"type": "BlockRemoved", "block_hashes": removed})

    def _log(self, event: dict) -> None:
        self._seq += 1
        self._events.append({"seq": self._seq, **event})

    def events_after(self, seq: int) -> dict:
        """Events after `seq`; a consumer that fell behind the log gets a full snapshot."""
        with self._lock:
            oldest = self._events[0]["seq"] if self._events else self._seq + 1
            snapshot = None
            if seq < oldest - 1:
                snapshot = list(self._blocks)
                events = []
            else:
                events = [e for e in self._events if e["seq"] > seq]
            return {"last": self._seq, "snapshot": snapshot, "events": events,
                    "occupancy": len(self._blocks), "capacity": self.capacity, "block_tokens": self.block_tokens}
