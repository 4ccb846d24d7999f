"""What a model sees of an invocation and what it answers: the container contract's data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol


@dataclass
class Invocation:
    body: bytes
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # True while the caller is still connected; long models poll it to stop early.
    connected: Callable[[], bool] = lambda: True


@dataclass
class Reply:
    body: bytes | Iterable[bytes] = b""
    status: int = 200
    content_type: str = "application/json"
    custom_attributes: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # more response headers (sessions)


class Model(Protocol):
    # How many invocations the instance runs at once; more wait in its queue.
    concurrency: int | None

    def healthy(self) -> bool: ...

    def invoke(self, invocation: Invocation) -> Reply: ...
