"""Data capture: with an endpoint config's `DataCaptureConfig` enabled, a sample of invocations
(`InitialSamplingPercentage`) is written to S3 as SageMaker writes it: JSON lines of
`captureData` (`endpointInput` / `endpointOutput` as `CaptureOptions` say) and `eventMetadata`,
under `<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<id>.jsonl`.

Records are buffered per endpoint, variant and hour and written by a background thread every
`flush_s` seconds (SageMaker, too, writes files every few minutes rather than per call), and
on `flush()` (reset, deletion, shutdown)."""

from __future__ import annotations

import base64
import datetime
import json
import logging
import random
import threading
import time
import uuid
from collections import defaultdict
from typing import Any, Callable, Mapping

from sagemaker_emu.runtime.api import ResultStore

log = logging.getLogger("sagemaker_emu.capture")

DEFAULT_CSV = ("text/csv",)
DEFAULT_JSON = ("application/json",)


def _encoded(body: bytes, content_type: str | None, config: Mapping[str, Any]) -> dict:
    kind = (content_type or "").split(";")[0].strip().lower()
    header = config.get("CaptureContentTypeHeader") or {}
    csv = {t.lower() for t in header.get("CsvContentTypes", DEFAULT_CSV)}
    js = {t.lower() for t in header.get("JsonContentTypes", DEFAULT_JSON)}
    if kind in csv or kind in js:
        try:
            return {"data": body.decode("utf-8"), "encoding": "CSV" if kind in csv else "JSON"}
        except UnicodeDecodeError:
            pass
    return {"data": base64.b64encode(body).decode(), "encoding": "BASE64"}


class DataCapture:
    def __init__(self, results: ResultStore, seed: int | None = None, flush_s: float = 1.0,
                 wall: Callable[[], float] = time.time) -> None:
        self.results = results
        self.flush_s = flush_s
        self.wall = wall
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._buffers: dict[str, list[str]] = defaultdict(list)  # object prefix (up to the hour) -> lines
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._flush_loop, daemon=True, name="data-capture")
        self._thread.start()

    def record(self, endpoint: str, variant: str, config: Mapping[str, Any], request_body: bytes,
               request_type: str | None, response_body: bytes, response_type: str | None,
               inference_id: str | None = None) -> None:
        """Capture one invocation if the config enables it and the sample picks it."""
        if not config.get("EnableCapture", True):
            return
        with self._lock:
            if self._rng.uniform(0, 100) >= config["InitialSamplingPercentage"]:
                return
        modes = {o["CaptureMode"] for o in config.get("CaptureOptions", [])}
        data: dict[str, Any] = {}
        if modes & {"Input", "InputAndOutput"}:
            data["endpointInput"] = {"observedContentType": request_type or "", "mode": "INPUT",
                                     **_encoded(request_body, request_type, config)}
        if modes & {"Output", "InputAndOutput"}:
            data["endpointOutput"] = {"observedContentType": response_type or "", "mode": "OUTPUT",
                                      **_encoded(response_body, response_type, config)}
        now = datetime.datetime.fromtimestamp(self.wall(), datetime.timezone.utc)
        metadata = {"eventId": str(uuid.uuid4()), "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
        if inference_id is not None:
            metadata["inferenceId"] = inference_id
        line = json.dumps({"captureData": data, "eventMetadata": metadata, "eventVersion": "0"})
        prefix = "/".join((config["DestinationS3Uri"].rstrip("/"), endpoint, variant, now.strftime("%Y/%m/%d/%H")))
        with self._lock:
            self._buffers[prefix].append(line)

    def flush(self) -> None:
        """Write every buffered record now."""
        with self._lock:
            buffers, self._buffers = self._buffers, defaultdict(list)
        now = datetime.datetime.fromtimestamp(self.wall(), datetime.timezone.utc)
        for prefix, lines in buffers.items():
            url = f"{prefix}/{now.strftime('%M-%S')}-{now.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
            try:
                self.results.write(url, ("\n".join(lines) + "\n").encode(), "application/jsonlines")
            except Exception as exc:  # a missing bucket must not stop the endpoint, as on SageMaker
                log.warning("data capture could not write %s: %s", url, exc)

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_s):
            self.flush()

    def discard(self) -> None:
        """Drop what is buffered (reset)."""
        with self._lock:
            self._buffers.clear()
