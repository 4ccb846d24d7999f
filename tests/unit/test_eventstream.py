"""The encoder against botocore's own event-stream decoder."""

import random

import pytest
from botocore.eventstream import EventStreamBuffer

from sagemaker_emu.protocol import eventstream


def decode(data: bytes):
    buf = EventStreamBuffer()
    buf.add_data(data)
    return list(buf)


@pytest.mark.parametrize("size", [0, 1, 7, 100, 4096, 65537, 1024 * 1024])
def test_payload_parts_of_any_size_and_bytes(size):
    payload = random.Random(size).randbytes(size)
    (msg,) = decode(eventstream.payload_part(payload))
    assert msg.payload == payload
    assert msg.headers == {":message-type": "event", ":event-type": "PayloadPart",
                           ":content-type": "application/octet-stream"}


def test_many_messages_in_one_buffer_and_split_across_reads():
    rng = random.Random(3)
    payloads = [rng.randbytes(rng.randrange(0, 3000)) for _ in range(50)]
    data = b"".join(eventstream.payload_part(p) for p in payloads)
    buf = EventStreamBuffer()
    decoded = []
    for start in range(0, len(data), 777):  # as a socket would deliver it
        buf.add_data(data[start:start + 777])
        decoded += [m.payload for m in buf]
    assert decoded == payloads


def test_exception_messages():
    (msg,) = decode(eventstream.model_stream_error("it broke", "StreamBroken"))
    assert msg.headers[":message-type"] == "exception"
    assert msg.headers[":exception-type"] == "ModelStreamError"
    assert msg.payload == b'{"Message": "it broke", "ErrorCode": "StreamBroken"}'
    (msg,) = decode(eventstream.internal_stream_failure("oops"))
    assert msg.headers[":exception-type"] == "InternalStreamFailure"


def test_a_corrupted_byte_fails_botocore_checksum():
    data = bytearray(eventstream.payload_part(b"hello"))
    data[-6] ^= 0xFF
    with pytest.raises(Exception, match="(?i)checksum|crc"):
        decode(bytes(data))
