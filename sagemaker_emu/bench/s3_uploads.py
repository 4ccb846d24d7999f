"""`sagemaker-emu bench s3-uploads`: what a large upload to the embedded S3 costs the server.

One emulator; a PutObject of `--put-mib` MiB (one request, its body streamed from a file), then
a multipart upload of `--multipart-mib` MiB (boto3's upload_file, 8 MiB parts, then
CompleteMultipartUpload). Printed per upload: its time, the server's resident memory before it
and at its peak during it (VmHWM, reset before each), and the rise; then the object read back
and compared by its MD5, so a cheap upload that stored the wrong bytes shows.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

from boto3.s3.transfer import TransferConfig

from sagemaker_emu.bench.model_data import _object, _reset_peak
from sagemaker_emu.bench.stats import proc_status, table
from sagemaker_emu.testing import EmulatorProcess, client


def _md5(chunks) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def _row(name: str, pid: int, upload, s3, key: str, data: Path) -> list[str]:
    _reset_peak(pid)
    before = proc_status(pid)["VmRSS"] / 1024
    started = time.perf_counter()
    upload()
    seconds = time.perf_counter() - started
    peak = proc_status(pid)["VmHWM"] / 1024
    with data.open("rb") as f:
        expected = _md5(iter(lambda: f.read(1 << 20), b""))
    body = s3.get_object(Bucket="uploads", Key=key)["Body"]
    stored = _md5(body.iter_chunks(1 << 20))
    return [name, f"{data.stat().st_size >> 20}", f"{seconds:.1f}", f"{before:.0f}", f"{peak:.0f}",
            f"{peak - before:+.0f}", "yes" if stored == expected else "NO"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagemaker-emu bench s3-uploads", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--put-mib", type=int, default=1024, help="PutObject size in MiB (default: 1024)")
    parser.add_argument("--multipart-mib", type=int, default=600, help="multipart upload size in MiB (default: 600)")
    args = parser.parse_args(argv)
    put_data, multipart_data = _object(args.put_mib), _object(args.multipart_mib)
    emulator = EmulatorProcess()
    try:
        s3 = client(emulator.url, "s3")
        s3.create_bucket(Bucket="uploads")
        pid = emulator.proc.pid

        def put() -> None:
            with put_data.open("rb") as f:
                s3.put_object(Bucket="uploads", Key="put/model.tar.gz", Body=f)

        def multipart() -> None:
            config = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20, max_concurrency=4)
            s3.upload_file(str(multipart_data), "uploads", "multipart/model.tar.gz", Config=config)

        rows = [_row("PutObject", pid, put, s3, "put/model.tar.gz", put_data),
                _row("multipart", pid, multipart, s3, "multipart/model.tar.gz", multipart_data)]
    finally:
        emulator.stop()
        for path in (put_data, multipart_data):
            path.unlink()
            os.rmdir(path.parent)
    print(table(["upload", "MiB", "seconds", "RSS before MB", "RSS peak MB", "rise MB", "read back equal"], rows))
    print(f"(temporary files in {tempfile.gettempdir()}; the server spools large bodies there)")
    return 0
