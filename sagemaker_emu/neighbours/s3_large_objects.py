"""Large objects in the embedded S3, kept out of memory.

moto's S3 holds a request body whole in memory, writes it again into the object's store, joins
a multipart upload's parts in memory twice more (the object, and its checksum's input), and
answers a GET by reading the whole object: a 1 GiB PutObject cost the emulator 2 GiB, a 600 MiB
multipart upload 1.5 GiB. LLM weights are that size. In front of moto's S3 app, for bodies and
objects of at least `STREAM_MIN_BYTES`:
  - a plain GET (no Range, version, condition or customer key) is answered from moto's stored
    copy a chunk at a time, with the headers moto would send;
  - a PutObject or UploadPart body is copied to a temporary file, hashed on the way; moto then
    handles the request with an empty body (so every header, ACL, tag, lock and version rule is
    moto's), and the stored object's contents, size, ETag and checksum are set from the file;
  - a CompleteMultipartUpload lets moto check and record the completion with the parts' bytes
    set aside, then joins those bytes file to file, computing the checksum as moto would.
Everything else goes to moto unchanged. This reaches into moto's FakeKey (`_value_buffer`,
`contentsize`, `_etag`), pinned with moto's version; tests/integration/test_s3_large_objects.py
checks every path against what moto itself stores for a small object.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import io
import logging
import tempfile
from typing import IO, Callable, Iterable, Iterator
from urllib.parse import parse_qsl, unquote
from xml.dom import minidom

log = logging.getLogger("sagemaker_emu.neighbours")

STREAM_MIN_BYTES = 8 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
_SIGNING = {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
            "X-Amz-Signature", "X-Amz-Security-Token", "AWSAccessKeyId", "Signature", "Expires"}
_CONDITIONS = ("HTTP_RANGE", "HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE",
               "HTTP_IF_UNMODIFIED_SINCE", "HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION_CUSTOMER_ALGORITHM")


class LargeObjects:
    def __init__(self, app: Callable, account: str) -> None:
        self.app = app
        self.account = account

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        extra = set(query) - _SIGNING
        where = _bucket_and_key(environ)
        if where is None:
            return self.app(environ, start_response)
        if method == "GET" and not extra:
            return self._get(environ, start_response, *where)
        if method == "PUT" and extra in (set(), {"partNumber", "uploadId"}) and _plain_body(environ):
            return self._put(environ, start_response, *where, query.get("uploadId"), query.get("partNumber"))
        if method == "POST" and extra == {"uploadId"}:
            return self._complete(environ, start_response, where[0], query["uploadId"])
        return self.app(environ, start_response)

    def _backend(self):
        from moto.s3.models import s3_backends

        return s3_backends[self.account]["aws"]

    # GetObject ---------------------------------------------------------------------------------

    def _get(self, environ: dict, start_response, bucket: str, key_name: str) -> Iterable[bytes]:
        key = None
        if not any(environ.get(h) for h in _CONDITIONS):
            try:
                key = self._backend().get_object(bucket, key_name)
            except Exception:  # no such bucket, and the like: moto answers those
                key = None
        if key is None or key.size < STREAM_MIN_BYTES:
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

    # PutObject and UploadPart ------------------------------------------------------------------

    def _put(self, environ: dict, start_response, bucket: str, key_name: str, upload_id: str | None,
             part_number: str | None) -> Iterable[bytes]:
        length = int(environ["CONTENT_LENGTH"])
        algorithm = (environ.get("HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM") or "").upper()
        checksum_variable = f"HTTP_X_AMZ_CHECKSUM_{algorithm}"
        digest = _Checksum(algorithm) if algorithm and not environ.get(checksum_variable) else None
        spool: IO[bytes] | None
        spool, md5 = _spool(environ["wsgi.input"], length, digest)
        if digest is not None:  # moto would compute it from the (empty) body it is given
            environ[checksum_variable] = digest.base64()
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(b""), "0"
        answer = _Answer()
        try:
            body = self.app(environ, answer.start_response)
            if answer.ok:
                if upload_id is not None:
                    key = self._backend().get_bucket(bucket).multiparts[upload_id].parts[int(part_number or 0)]
                else:
                    key = self._backend().get_object(bucket, key_name, version_id=answer.header("x-amz-version-id"))
                if key is None:  # deleted in the instant since moto stored it
                    raise LookupError(f"s3://{bucket}/{key_name} was gone before its contents were stored")
                _replace_contents(key, spool, md5)
                spool = None
                answer.set_header("ETag", f'"{md5}"')
        finally:
            if spool is not None:
                spool.close()
        start_response(answer.status, answer.headers)
        return body

    # CompleteMultipartUpload -------------------------------------------------------------------

    def _complete(self, environ: dict, start_response, bucket_name: str, upload_id: str) -> Iterable[bytes]:
        try:
            multipart = self._backend().get_bucket(bucket_name).multiparts[upload_id]
        except Exception:  # no such bucket or upload: moto answers those
            return self.app(environ, start_response)
        parts = dict(multipart.parts)
        if sum(part.size for part in parts.values()) < STREAM_MIN_BYTES:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(request)
        aside = {}
        for number, part in parts.items():
            _ = part.etag  # moto compares the listed ETags with the parts' (cached from here on)
            with part.lock:
                aside[number], part._value_buffer = part._value_buffer, tempfile.SpooledTemporaryFile()
        answer = _Answer()
        try:
            body = self.app(environ, answer.start_response)
            if answer.ok:
                key = self._backend().get_object(bucket_name, multipart.key_name,
                                                 version_id=answer.header("x-amz-version-id"))
                listed = [int(p.getElementsByTagName("PartNumber")[0].firstChild.wholeText)  # type: ignore[union-attr]
                          for p in minidom.parseString(request).getElementsByTagName("Part")]
                _join(key, multipart, [aside[number] for number in listed])
        finally:
            if answer.ok:
                for buffer in aside.values():
                    buffer.close()
            else:  # moto refused (an unknown part, a wrong ETag...): the upload goes on as it was
                for number, buffer in aside.items():
                    with parts[number].lock:
                        parts[number]._value_buffer.close()
                        parts[number]._value_buffer = buffer
        start_response(answer.status, answer.headers)
        return body


class _Answer:
    """What moto's app passed to start_response, held until the stored object is right."""

    status = "500 Internal Server Error"
    headers: list[tuple[str, str]] = []

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info=None) -> Callable:
        self.status, self.headers = status, list(headers)
        return lambda data: None  # moto returns its body; it never writes

    @property
    def ok(self) -> bool:
        return self.status.startswith("200")

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    def set_header(self, name: str, value: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()] + [(name, value)]


def _bucket_and_key(environ: dict) -> tuple[str, str] | None:
    # PATH_INFO is percent-decoded UTF-8 read as latin-1 (PEP 3333); moto decodes the key name
    # once more (it stores `a%41` as `aA`), and the object looked up must be the one moto wrote
    path = unquote(environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")).lstrip("/")
    host = environ.get("HTTP_HOST", "").split(":")[0]
    if host.endswith(".localhost"):  # virtual-host style: the bucket is in the name
        bucket, key_name = host[:-len(".localhost")], path
    else:
        bucket, _, key_name = path.partition("/")
    return (bucket, key_name) if bucket and key_name else None


def _plain_body(environ: dict) -> bool:
    """A body of at least STREAM_MIN_BYTES, sent as itself: not a copy, not aws-chunked (moto
    decodes those; boto3 sends them only over HTTPS)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return (length >= STREAM_MIN_BYTES and not environ.get("HTTP_X_AMZ_COPY_SOURCE")
            and not (environ.get("HTTP_X_AMZ_CONTENT_SHA256") or "").startswith("STREAMING-")
            and "aws-chunked" not in (environ.get("HTTP_CONTENT_ENCODING") or ""))


def _spool(source: IO[bytes], length: int, digest: _Checksum | None) -> tuple[IO[bytes], str]:
    """The body, copied to a temporary file, and its MD5 (the ETag S3 gives a single PUT)."""
    spool = tempfile.TemporaryFile()
    md5 = hashlib.md5(usedforsecurity=False)
    remaining = length
    while remaining > 0:
        chunk = source.read(min(CHUNK_BYTES, remaining))
        if not chunk:
            break
        remaining -= len(chunk)
        spool.write(chunk)
        md5.update(chunk)
        if digest is not None:
            digest.update(chunk)
    return spool, md5.hexdigest()


def _replace_contents(key, spool: IO[bytes], md5: str) -> None:
    size = spool.seek(0, io.SEEK_END)
    with key.lock:
        old, key._value_buffer = key._value_buffer, spool
        key.contentsize = size
        key._etag = md5
    old.close()


def _join(key, multipart, buffers: list[IO[bytes]]) -> None:
    """The completed object's bytes, part after part, with the checksum moto's completion
    computes (its algorithm, or CRC64NVME over the whole object when none was named)."""
    algorithm = multipart.metadata.get("x-amz-checksum-algorithm") or "CRC64NVME"
    kind = multipart.metadata.get("x-amz-checksum-type") or ("FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE")
    whole, of_parts = _Checksum(algorithm), bytearray()
    size = 0
    with key.lock:
        target = key._value_buffer
        target.seek(0)
        target.truncate()
        for buffer in buffers:
            part = _Checksum(algorithm)
            buffer.seek(0)
            for chunk in iter(functools.partial(buffer.read, CHUNK_BYTES), b""):
                target.write(chunk)
                size += len(chunk)
                (part if kind == "COMPOSITE" else whole).update(chunk)
            of_parts.extend(part.digest())
        key.contentsize = size
        if kind == "COMPOSITE":
            whole.update(bytes(of_parts))
        key.checksum_value = whole.base64()


class _Checksum:
    """moto's `compute_checksum`, fed a chunk at a time, with its substitutions: CRC32 stands
    in for CRC32C without the `crc32c` package and for CRC64NVME without awscrt."""

    def __init__(self, algorithm: str) -> None:
        from moto.core.compat import HAS_CRT

        self._hash = None
        self._crc = 0
        self._update_crc: Callable[[bytes, int], int] = binascii.crc32
        self._width = 4
        if algorithm == "SHA1":
            self._hash = hashlib.sha1(usedforsecurity=False)
        elif algorithm == "CRC32C":
            try:
                import crc32c

                self._update_crc = crc32c.crc32c
            except ImportError:
                pass
        elif algorithm == "CRC64NVME" and HAS_CRT:
            from awscrt import checksums

            self._update_crc, self._width = checksums.crc64nvme, 8
        elif algorithm not in ("CRC32", "CRC64NVME"):
            self._hash = hashlib.sha256(usedforsecurity=False)

    def update(self, chunk: bytes) -> None:
        if self._hash is not None:
            self._hash.update(chunk)
        else:
            self._crc = self._update_crc(chunk, self._crc)

    def digest(self) -> bytes:
        return self._hash.digest() if self._hash is not None else self._crc.to_bytes(self._width, "big")

    def base64(self) -> str:
        return binascii.b2a_base64(self.digest(), newline=False).decode()


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
