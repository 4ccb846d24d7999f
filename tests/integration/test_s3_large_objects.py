"""Large objects in the embedded S3 (issue 25 item 3): bodies of 8 MiB and more are kept out of
the server's memory on the way in (PutObject, UploadPart, CompleteMultipartUpload) and on the
way out (GetObject), and what is stored and answered is what moto stores and answers for the
same requests handled whole."""

import os
import tempfile

import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.bench.model_data import _reset_peak
from sagemaker_emu.bench.stats import proc_status
from sagemaker_emu.neighbours import s3_large_objects
from sagemaker_emu.testing import EmulatorProcess, EmulatorServer

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def local():
    with EmulatorServer() as srv:
        yield srv


@pytest.fixture
def s3(local):
    local.reset()
    s3 = local.client("s3")
    s3.create_bucket(Bucket="large")
    return s3


def _as_moto_would(monkeypatch) -> None:
    """Every request to moto as it came, whatever its size."""
    monkeypatch.setattr(s3_large_objects, "STREAM_MIN_BYTES", 1 << 62)


def _stored(s3, key: str) -> dict:
    head = s3.head_object(Bucket="large", Key=key, ChecksumMode="ENABLED")
    body = s3.get_object(Bucket="large", Key=key)["Body"].read()
    fields = {name: head.get(name) for name in ("ETag", "ContentLength", "ContentType", "Metadata", "ChecksumCRC32",
                                                "ChecksumSHA256", "ChecksumCRC64NVME", "ChecksumType")}
    return {**fields, "body": body, "tags": s3.get_object_tagging(Bucket="large", Key=key)["TagSet"]}


def _put(s3, key: str, data: bytes, **extra) -> dict:
    answer = s3.put_object(Bucket="large", Key=key, Body=data, ContentType="application/x-tar",
                           Metadata={"who": "me"}, Tagging="a=b", **extra)
    return {name: answer.get(name) for name in ("ETag", "ChecksumCRC32", "ChecksumSHA256")}


@pytest.mark.parametrize("checksum", [{}, {"ChecksumAlgorithm": "SHA256"}])
@pytest.mark.parametrize("key", ["streamed", "caf\u00e9/\u00fcber", "with space+plus", "percent%41"])
def test_a_large_put_stores_what_moto_stores(s3, monkeypatch, checksum, key):
    data = os.urandom(9 * MIB)
    streamed = _put(s3, key, data, **checksum)
    with monkeypatch.context() as m:
        _as_moto_would(m)
        whole = _put(s3, "whole", data, **checksum)
        expected = _stored(s3, "whole")
    assert streamed == whole and streamed["ETag"]
    assert _stored(s3, key) == expected
    assert expected["body"] == data


def _multipart(s3, key: str, parts: list[bytes], **extra) -> dict:
    upload = s3.create_multipart_upload(Bucket="large", Key=key, ContentType="application/x-tar", **extra)
    uploaded = []
    for number, data in enumerate(parts, 1):
        answer = s3.upload_part(Bucket="large", Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=data,
                                **({"ChecksumAlgorithm": extra["ChecksumAlgorithm"]} if extra else {}))
        uploaded.append({"PartNumber": number, "ETag": answer["ETag"],
                         **{k: v for k, v in answer.items() if k.startswith("Checksum")}})
    listed = s3.list_parts(Bucket="large", Key=key, UploadId=upload["UploadId"])["Parts"]
    done = s3.complete_multipart_upload(Bucket="large", Key=key, UploadId=upload["UploadId"],
                                        MultipartUpload={"Parts": uploaded})
    return {"parts": [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed], "ETag": done["ETag"]}


@pytest.mark.parametrize("checksum", [{}, {"ChecksumAlgorithm": "CRC32"}, {"ChecksumAlgorithm": "SHA256"}])
def test_a_large_multipart_upload_stores_what_moto_stores(s3, monkeypatch, checksum):
    parts = [os.urandom(8 * MIB), os.urandom(9 * MIB), os.urandom(MIB)]  # streamed, streamed, moto's own
    streamed = _multipart(s3, "streamed", parts, **checksum)
    with monkeypatch.context() as m:
        _as_moto_would(m)
        whole = _multipart(s3, "whole", parts, **checksum)
        expected = _stored(s3, "whole")
    assert streamed == whole
    assert _stored(s3, "streamed") == expected
    assert expected["body"] == b"".join(parts) and expected["ETag"].endswith('-3"')


def test_a_refused_completion_leaves_the_upload_as_it_was(s3):
    parts = [os.urandom(8 * MIB), os.urandom(MIB)]
    upload = s3.create_multipart_upload(Bucket="large", Key="k")["UploadId"]
    etags = [s3.upload_part(Bucket="large", Key="k", UploadId=upload, PartNumber=n, Body=data)["ETag"]
             for n, data in enumerate(parts, 1)]
    with pytest.raises(ClientError) as refused:
        s3.complete_multipart_upload(Bucket="large", Key="k", UploadId=upload, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": etags[0]}, {"PartNumber": 2, "ETag": '"0000"'}]})
    assert refused.value.response["Error"]["Code"] == "InvalidPart"
    s3.complete_multipart_upload(Bucket="large", Key="k", UploadId=upload, MultipartUpload={"Parts": [
        {"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, 1)]})
    assert s3.get_object(Bucket="large", Key="k")["Body"].read() == b"".join(parts)


def test_only_the_listed_parts_make_the_object(s3):
    parts = [os.urandom(8 * MIB), os.urandom(8 * MIB), os.urandom(MIB)]
    upload = s3.create_multipart_upload(Bucket="large", Key="k")["UploadId"]
    etags = [s3.upload_part(Bucket="large", Key="k", UploadId=upload, PartNumber=n, Body=data)["ETag"]
             for n, data in enumerate(parts, 1)]
    s3.complete_multipart_upload(Bucket="large", Key="k", UploadId=upload, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": etags[0]}, {"PartNumber": 3, "ETag": etags[2]}]})
    assert s3.get_object(Bucket="large", Key="k")["Body"].read() == parts[0] + parts[2]


def test_large_objects_leave_as_a_stream_with_moto_s_headers(s3):
    data = os.urandom(9 * MIB)
    s3.put_object(Bucket="large", Key="m.bin", Body=data, ContentType="application/x-tar", Metadata={"who": "me"})
    answer = s3.get_object(Bucket="large", Key="m.bin")
    assert answer["Body"].read() == data and answer["ContentType"] == "application/x-tar"
    assert answer["Metadata"] == {"Who": "me"} and answer["ContentLength"] == len(data)
    assert answer["ETag"] == s3.head_object(Bucket="large", Key="m.bin")["ETag"]
    ranged = s3.get_object(Bucket="large", Key="m.bin", Range="bytes=5-9")  # moto's own path
    assert ranged["Body"].read() == data[5:10]


@pytest.fixture(scope="module")
def own_server():
    """A server of its own, so that its memory is its uploads' alone."""
    emulator = EmulatorProcess()
    try:
        emulator.client("s3").create_bucket(Bucket="large")
        yield emulator
    finally:
        emulator.stop()


def _rise_mib(emulator, upload) -> float:
    pid = emulator.proc.pid
    _reset_peak(pid)
    before = proc_status(pid)["VmRSS"]
    upload()
    return (proc_status(pid)["VmHWM"] - before) / 1024


def test_a_large_put_does_not_cost_its_size_in_memory(own_server):
    s3 = own_server.client("s3")
    with tempfile.TemporaryFile() as f:
        for _ in range(192):
            f.write(os.urandom(MIB))
        f.seek(0)
        rise = _rise_mib(own_server, lambda: s3.put_object(Bucket="large", Key="put", Body=f))
    assert rise < 64, f"a 192 MiB PutObject raised the server's peak memory by {rise:.0f} MiB"


def test_a_large_multipart_upload_does_not_cost_its_size_in_memory(own_server):
    s3 = own_server.client("s3")
    upload = s3.create_multipart_upload(Bucket="large", Key="multipart")["UploadId"]
    parts = []

    def upload_all() -> None:
        for number in range(1, 7):
            etag = s3.upload_part(Bucket="large", Key="multipart", UploadId=upload, PartNumber=number,
                                  Body=os.urandom(32 * MIB))["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
        s3.complete_multipart_upload(Bucket="large", Key="multipart", UploadId=upload,
                                     MultipartUpload={"Parts": parts})

    rise = _rise_mib(own_server, upload_all)
    assert rise < 64, f"a 192 MiB multipart upload raised the server's peak memory by {rise:.0f} MiB"
