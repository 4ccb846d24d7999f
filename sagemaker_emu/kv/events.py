"""The `GET /kv-events?after=N` report: what an instance's prefix cache stored and evicted
since event N, in vLLM's KV-cache event names. One definition for the container that writes
it (`cache.py`) and the fleet that reads it (`index.py`).

    {"last": 42,                     # sequence number of the newest event
     "snapshot": null | [hash, ...], # every cached block, when the reader fell behind the log
     "events": [{"seq": 41, "type": "BlockStored", "block_hashes": [...]}, ...],
     "occupancy": 1800, "capacity": 2048,
     "block_tokens": 16,             # prompt tokens per block: readers must hash prompts alike
     "queried_tokens": 90000,        # prompt tokens prefilled since the start (vLLM's prefix_cache_queries)
     "hit_tokens": 61000}            # of which found in the cache (prefix_cache_hits)

A report without `block_tokens` (another container) means 16.
"""

from __future__ import annotations

from typing import Any

from sagemaker_emu.kv.blocks import DEFAULT_BLOCK_TOKENS

PATH = "/kv-events"
STORED, REMOVED, CLEARED = "BlockStored", "BlockRemoved", "AllBlocksCleared"


def report(last: int, snapshot: list[str] | None, events: list[dict], occupancy: int, capacity: int,
           block_tokens: int = DEFAULT_BLOCK_TOKENS, lookups: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    return {"last": last, "snapshot": snapshot, "events": events, "occupancy": occupancy,
            "capacity": capacity, "block_tokens": block_tokens, "queried_tokens": lookups[0],
            "hit_tokens": lookups[1]}


def apply(blocks: set[str], report: dict) -> set[str]:
    """The block set after `report`: a new set when it carries a snapshot (so readers never see
    one half-built), else `blocks` changed in place."""
    if report.get("snapshot") is not None:
        blocks = set(report["snapshot"])
    for event in report.get("events", []):
        if event["type"] == STORED:
            blocks.update(event["block_hashes"])
        elif event["type"] == REMOVED:
            blocks.difference_update(event["block_hashes"])
        elif event["type"] == CLEARED:
            blocks.clear()
    return blocks
