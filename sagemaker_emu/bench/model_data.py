"""`sagemaker-emu bench model-data`: a large s3:// model object, fetched once and shared.

Uploads `--mib` MiB to S3 (boto3's multipart upload_file), then deploys `--endpoints`
endpoints of `--instances` instances each, all naming that object, with AWS's TGI image (run
as llm-sim, which reads no model files, so the object is fetched but not unpacked; a framework
image would unpack the one cached copy per instance). Two set-ups, side by side:
  - embedded: S3 is moto's, in the emulator's own process;
  - external: S3 is another process (`--s3-endpoint`), so the emulator's memory shows the
    fetch alone.
Printed per set-up: upload time, time to InService of the first endpoint (which fetches) and of
the others (cache hits), downloads counted from the server's log, and the emulator's resident
memory before the deploys and at its peak during them (VmHWM, reset after the upload).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from sagemaker_emu.bench.stats import proc_status, table
from sagemaker_emu.testing import EmulatorProcess, client, deploy, variant

TGI = "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.4.0-tgi2.3.1-gpu-py311-cu124-ubuntu22.04"


def _object(mib: int) -> Path:
    path = Path(tempfile.mkdtemp(prefix="bench-model-data-")) / "model.tar.gz"
    chunk = os.urandom(1024 * 1024)
    with path.open("wb") as f:
        for i in range(mib):
            f.write(chunk[i % 7:] + chunk[: i % 7])  # distinct MiBs, cheap to make
    return path


def _reset_peak(pid: int) -> None:
    """Start VmHWM again from the current RSS (Linux: `5` to /proc/<pid>/clear_refs)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _one(mode: str, data: Path, endpoints: int, instances: int) -> list[str]:
    store = EmulatorProcess(log=subprocess.DEVNULL) if mode == "external" else None
    emulator = EmulatorProcess(*(("--s3-endpoint", store.url) if store else ()))
    try:
        s3 = client(store.url if store else emulator.url, "s3")
        s3.create_bucket(Bucket="models")
        started = time.perf_counter()
        s3.upload_file(str(data), "models", "big/model.tar.gz")
        upload_s = time.perf_counter() - started
        _reset_peak(emulator.proc.pid)  # the upload's own peak (moto assembles the parts) is not the fetch's
        before = proc_status(emulator.proc.pid)["VmRSS"] / 1024
        sm = emulator.client()
        sm.create_model(ModelName="big", PrimaryContainer={"Image": TGI, "ModelDataUrl": "s3://models/big/model.tar.gz"})
        times = []
        for e in range(endpoints):
            started = time.perf_counter()
            deploy(sm, f"big-{e}", [variant(model="big", InitialInstanceCount=instances)])
            times.append(time.perf_counter() - started)
        status = proc_status(emulator.proc.pid)
        downloads = emulator.logs().count("into the model data cache")
        others = sum(times[1:]) / max(1, len(times) - 1)
        return [mode, f"{upload_s:.1f}", f"{times[0]:.1f}", f"{others:.1f}" if len(times) > 1 else "-",
                str(downloads), f"{before:.0f}", f"{status['VmHWM'] / 1024:.0f}", f"{status['VmRSS'] / 1024:.0f}"]
    finally:
        emulator.stop()
        if store:
            store.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagemaker-emu bench model-data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=1024, help="object size in MiB (default: 1024)")
    parser.add_argument("--endpoints", type=int, default=2)
    parser.add_argument("--instances", type=int, default=4, help="instances per endpoint (default: 4)")
    args = parser.parse_args(argv)
    data = _object(args.mib)
    try:
        rows = [_one(mode, data, args.endpoints, args.instances) for mode in ("embedded", "external")]
    finally:
        data.unlink()
        data.parent.rmdir()
    print(f"{args.mib} MiB object, {args.endpoints} endpoints x {args.instances} instances")
    print(table(["S3", "upload s", "1st endpoint s", "other endpoints s", "downloads", "RSS before MB",
                 "RSS peak MB", "RSS after MB"], rows))
    return 0
