"""s3:// model data, fetched through boto3 from the neighbour S3 and kept on disk per object
ETag: an object is downloaded once (streamed to a file, never held in memory) and every
instance of every endpoint that names it unpacks that one copy; a new upload (a new ETag)
is fetched again."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlparse

from sagemaker_emu.neighbours.clients import NeighbourClients

log = logging.getLogger("sagemaker_emu.neighbours")

# SageMaker's FailureReason when model data cannot be downloaded (CreateEndpoint).
NOT_FOUND = ('Failed to download model data for container "{container}" from URL: "{url}". Please ensure that '
             "there is an object located at the URL and that the role passed to CreateModel has permissions to "
             "download the object.")
CHUNK_BYTES = 1024 * 1024
_MISSING = {"NoSuchKey", "NoSuchBucket", "404", "403", "AccessDenied", "NotFound"}


def split(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    return parsed.netloc, parsed.path.lstrip("/")


class S3ModelData:
    """Implements fleet.api.ObjectStore for s3:// URLs; raises LookupError with the FailureReason."""

    def __init__(self, clients: NeighbourClients, cache_dir: Path) -> None:
        self.clients = clients
        self.cache_dir = cache_dir
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.downloads = 0  # objects actually transferred (the cache's misses), for tests and benches

    def fetch(self, url: str, prefix: bool = False, container: str = "container_1") -> Path:
        """A local file holding the object at `url`, or with `prefix` a directory holding every
        object under it (relative paths kept)."""
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = split(url)
        s3 = self.clients.client("s3")
        try:
            if prefix:
                return self._prefix(s3, bucket, key, url, container)
            etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
            return self._cached(url, etag, lambda path: self._download(s3, bucket, key, path))
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code in _MISSING:
                raise LookupError(NOT_FOUND.format(container=container, url=url)) from None
            raise LookupError(f"{NOT_FOUND.format(container=container, url=url)} (S3 said {code})") from None
        except (BotoCoreError, OSError) as exc:
            raise LookupError(f"{NOT_FOUND.format(container=container, url=url)} ({exc})") from None

    def _prefix(self, s3, bucket: str, prefix: str, url: str, container: str) -> Path:
        # An empty prefix is an empty model directory: the SDK v3 names one for images that read
        # no model files (a missing bucket still fails, in list_objects_v2).
        objects = [o for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                   for o in page.get("Contents", []) if not o["Key"].endswith("/")]
        version = hashlib.sha256("".join(o["Key"] + o["ETag"] for o in objects).encode()).hexdigest()

        def download(directory: Path) -> None:
            directory.mkdir()
            for o in objects:
                relative = o["Key"][len(prefix):].lstrip("/") or Path(o["Key"]).name
                target = (directory / relative).resolve()
                if not target.is_relative_to(directory.resolve()):  # `..` in a key
                    raise LookupError(f"S3 key {o['Key']} would leave the model directory")
                target.parent.mkdir(parents=True, exist_ok=True)
                self._download(s3, bucket, o["Key"], target)

        return self._cached(url, version, download)

    def _download(self, s3, bucket: str, key: str, path: Path) -> None:
        """One GET, copied to the file a chunk at a time: memory stays at one chunk whatever
        the size (boto3's download_file holds ten 8-MiB parts in flight)."""
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        with path.open("wb") as f:
            for chunk in body.iter_chunks(CHUNK_BYTES):
                f.write(chunk)
        self.downloads += 1

    def _cached(self, url: str, version: str, make) -> Path:
        name = hashlib.sha256(f"{url}\0{version}".encode()).hexdigest()[:32]
        path = self.cache_dir / name
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:  # two endpoints naming one object download it once
            if path.exists():
                return path
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            partial = Path(tempfile.mkdtemp(dir=self.cache_dir, prefix=".partial-")) / "data"
            try:
                make(partial)
                os.replace(partial, path)
            finally:
                shutil.rmtree(partial.parent, ignore_errors=True)
            log.info("fetched %s into the model data cache", url)
            return path

    def clear(self) -> None:
        with self._guard:
            self._locks.clear()
        shutil.rmtree(self.cache_dir, ignore_errors=True)
