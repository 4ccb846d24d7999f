"""Large objects from the embedded S3, streamed.

moto's S3 answers a GET by reading the whole object into memory (and the WSGI answer holds
it again), so a 1 GiB model costs the emulator 2 GiB at the moment it is fetched. In front of
moto's S3 app, a plain GET (no Range, no version, no condition, no customer key) of an object
of at least `STREAM_MIN_BYTES` is answered from moto's own stored copy, a chunk at a time,
with the headers moto would send. Everything else goes to moto unchanged."""

from __future__ import annotations

import logging
from typing import Callable, Iterable, Iterator
from urllib.parse import parse_qsl, unquote

log = logging.getLogger("sagemaker_emu.neighbours")

STREAM_MIN_BYTES = 8 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
_SIGNING = {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
            "X-Amz-Signature", "X-Amz-Security-Token", "AWSAccessKeyId", "Signature", "Expires"}
_CONDITIONS = ("HTTP_RANGE", "HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE",
               "HTTP_IF_UNMODIFIED_SINCE", "HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION_CUSTOMER_ALGORITHM")


class StreamingGets:
    def __init__(self, app: Callable, account: str) -> None:
        self.app = app
        self.account = account

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        key = self._large_object(environ)
        if key is None:
            return self.app(environ, start_response)
        headers = dict(key.response_dict)
        if key.version_id != "null":
            headers["x-amz-version-id"] = key.version_id
        # The stored checksum, when asked for (boto3 asks by default), as moto's GET sends it.
        if environ.get("HTTP_X_AMZ_CHECKSUM_MODE") == "ENABLED" and key.checksum_algorithm:
            value = key.checksum_value
            if key.checksum_type == "COMPOSITE":
                value = f"{key.checksum_value}-{key.checksum_parts}"
            headers[f"x-amz-checksum-{key.checksum_algorithm.lower()}"] = value
            if key.checksum_type:
                headers["x-amz-checksum-type"] = key.checksum_type
        headers.update(key.metadata)
        present = {name.lower() for name in headers}
        if "content-type" not in present:
            headers["Content-Type"] = "binary/octet-stream"
        if "accept-ranges" not in present:
            headers["Accept-Ranges"] = "bytes"
        start_response("200 OK", [(k, str(v)) for k, v in headers.items()])
        return _chunks(key)

    def _large_object(self, environ: dict):
        if environ.get("REQUEST_METHOD") != "GET" or any(environ.get(h) for h in _CONDITIONS):
            return None
        if any(name not in _SIGNING for name, _ in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)):
            return None  # versionId, partNumber, response-* overrides, ?acl...: moto's
        path = unquote(environ.get("PATH_INFO", "")).lstrip("/")
        host = environ.get("HTTP_HOST", "").split(":")[0]
        if host.endswith(".localhost"):  # virtual-host style: the bucket is in the name
            bucket, key_name = host[:-len(".localhost")], path
        else:
            bucket, _, key_name = path.partition("/")
        if not bucket or not key_name:
            return None
        from moto.s3.models import s3_backends

        try:
            key = s3_backends[self.account]["aws"].get_object(bucket, key_name)
        except Exception:  # no such bucket, and the like: moto answers those
            return None
        if key is None or key.size < STREAM_MIN_BYTES:
            return None
        return key


def _chunks(key) -> Iterator[bytes]:
    position = 0
    while True:
        with key.lock:  # others may read the same stored copy meanwhile
            key._value_buffer.seek(position)
            chunk = key._value_buffer.read(CHUNK_BYTES)
        if not chunk:
            return
        position += len(chunk)
        yield chunk
