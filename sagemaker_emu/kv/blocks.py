"""Prompts as cache blocks, as vLLM's prefix caching names them.

A prompt is cut into blocks of `block_tokens` tokens; block i's hash covers its tokens and
block i-1's hash, so equal hashes mean equal prompts up to the end of that block. Only full
blocks are cached. The container (llm-sim) and the router (KV_AWARE) hash alike through here.
"""

from __future__ import annotations

import hashlib
import re

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


def prompt_text(request: object) -> str | None:
    """The prompt of an LLM request body (parsed JSON): TGI's and LMI's `inputs`, an OpenAI text
    completion's `prompt`, or the Messages API's `messages`, one `role: text` line each (so that
    a conversation's earlier turns are the prefix of its next request, as a chat template makes them)."""
    if not isinstance(request, dict):
        return None
    for name in ("inputs", "prompt"):
        if isinstance(request.get(name), str):
            return request[name]
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    lines = []
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return None
        content = message.get("content")
        if isinstance(content, list):  # content parts: the text ones
            texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
            content = "".join(t for t in texts if isinstance(t, str)) if all(isinstance(t, str) for t in texts) else None
        if not isinstance(content, str):
            return None
        lines.append(f"{message['role']}: {content}")
    return "\n".join(lines)


def block_hashes(toks: list[str], block_tokens: int = DEFAULT_BLOCK_TOKENS) -> list[str]:
    out: list[str] = []
    parent = b""
    for start in range(0, len(toks) - block_tokens + 1, block_tokens):
        # sha1 cut to 64 bits: a third cheaper than blake2b here, and collisions only fake a hit
        parent = hashlib.sha1(parent + "\x1f".join(toks[start:start + block_tokens]).encode()).digest()[:8]
        out.append(parent.hex())
    return out
