"""AWS event-stream framing (`application/vnd.amazon.eventstream`), as botocore decodes it.

A message: total length (4 bytes, big-endian), headers length (4), CRC-32 of those 8 bytes
(4), headers, payload, CRC-32 of everything before it (4). Header: name length (1 byte),
name, value type (1; 7 = string), value length (2), value.
"""

from __future__ import annotations

import json
import struct
import zlib

_STRING = 7


def _header(name: str, value: str) -> bytes:
    n, v = name.encode(), value.encode()
    return struct.pack("!B", len(n)) + n + struct.pack("!BH", _STRING, len(v)) + v


def message(headers: list[tuple[str, str]], payload: bytes = b"") -> bytes:
    head = b"".join(_header(k, v) for k, v in headers)
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack("!II", total, len(head))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    body = prelude + head + payload
    return body + struct.pack("!I", zlib.crc32(body))


def payload_part(data: bytes) -> bytes:
    """One chunk of the model's answer: boto3 yields `{'PayloadPart': {'Bytes': data}}`."""
    return message([(":message-type", "event"), (":event-type", "PayloadPart"),
                    (":content-type", "application/octet-stream")], data)


def model_stream_error(text: str, error_code: str) -> bytes:
    """The modeled mid-stream failure; boto3 raises EventStreamError (code ModelStreamError)."""
    return message([(":message-type", "exception"), (":exception-type", "ModelStreamError"),
                    (":content-type", "application/json")],
                   json.dumps({"Message": text, "ErrorCode": error_code}).encode())


def internal_stream_failure(text: str) -> bytes:
    return message([(":message-type", "exception"), (":exception-type", "InternalStreamFailure"),
                    (":content-type", "application/json")], json.dumps({"Message": text}).encode())
