"""Offset paging for the emulator's own services besides SageMaker (CloudWatch, Logs,
Application Auto Scaling): the token a page hands out is where the next one starts."""

from __future__ import annotations

from typing import Any


def page(items: list, member: str, token: Any, size: int, token_member: str = "NextToken") -> dict[str, Any]:
    """`items[token:token + size]` under `member`, and `token_member` when more follow; a token
    that is not one of ours starts from the beginning."""
    start = int(token) if str(token or "").isdigit() else 0
    out: dict[str, Any] = {member: items[start:start + size]}
    if start + size < len(items):
        out[token_member] = str(start + size)
    return out
