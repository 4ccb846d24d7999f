"""A request or answer body: bytes, or a file holding it (an asynchronous call's input or
answer of up to 1 GB, which never enters the server's memory). Shared by the runtime, the
container client and the S3 results."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union


@dataclass(frozen=True)
class FileBody:
    """A body kept in a file: its path and length (the file is the caller's to remove)."""

    path: Path
    length: int

    def head(self, limit: int) -> bytes:
        """Its first `limit` bytes (what a router reads of it)."""
        with open(self.path, "rb") as f:
            return f.read(min(limit, self.length))


Body = Union[bytes, FileBody]


def body_length(body: Body) -> int:
    return body.length if isinstance(body, FileBody) else len(body)
