"""The fleet's picture of one instance's prefix cache, which KV_AWARE reads.

Built from the instance's `/kv-events` reports (fetched by the fleet, `fleet/kv_sync.py`),
and between them from the prompts the instance served: a finished call's blocks are cached
now (the container cached them while prefilling, as SGLang's cache-aware router also
assumes); only the reports tell evictions. No I/O here.
"""

from __future__ import annotations

from typing import Sequence

from sagemaker_emu.kv import events
from sagemaker_emu.kv.blocks import DEFAULT_BLOCK_TOKENS


class KvIndex:
    def __init__(self) -> None:
        # Changed in place under the GIL, or replaced whole: readers only test membership.
        self.blocks: set[str] = set()
        self.occupancy = 0
        self.capacity = 0
        self.block_tokens = DEFAULT_BLOCK_TOKENS  # as the instance reports
        self.supported: bool | None = None  # unknown until the first report (or 404)
        self.last = 0  # the newest event seen
        self.queried_tokens = self.hit_tokens = 0  # the container's prefix-cache lookups, as last reported

    def reset(self) -> None:
        """A restarted instance starts with an empty cache and a new event sequence."""
        self.blocks, self.occupancy, self.capacity, self.last, self.supported = set(), 0, 0, 0, None
        self.queried_tokens = self.hit_tokens = 0
        self.block_tokens = DEFAULT_BLOCK_TOKENS

    def served(self, prompt_blocks: Sequence[str]) -> None:
        if self.supported:
            self.blocks.update(prompt_blocks)

    def apply(self, report: dict) -> None:
        self.supported = True
        self.blocks = events.apply(self.blocks, report)
        self.occupancy = report.get("occupancy", len(self.blocks))
        self.capacity = report.get("capacity", 0)
        self.block_tokens = report.get("block_tokens", DEFAULT_BLOCK_TOKENS)
        self.last = report.get("last", self.last)
        self.queried_tokens, self.hit_tokens = report.get("queried_tokens", 0), report.get("hit_tokens", 0)
