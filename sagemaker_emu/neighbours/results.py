"""runtime.api.ResultStore over the neighbours: asynchronous inference reads its inputs from S3,
writes results to S3 and notifies through SNS, with boto3, as the real service does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

from sagemaker_emu.bodies import Body, FileBody
from sagemaker_emu.neighbours.clients import NeighbourClients

# https://BUCKET.s3[.REGION].amazonaws.com/KEY and https://s3[.REGION].amazonaws.com/BUCKET/KEY
_VIRTUAL = re.compile(r"^https://([^/]+?)\.s3[.-]?(?:[a-z0-9-]+\.)?amazonaws\.com(?:\.cn)?/(.*)$")
_PATH = re.compile(r"^https://s3[.-]?(?:[a-z0-9-]+\.)?amazonaws\.com(?:\.cn)?/([^/]+)/(.*)$")


def bucket_key(url: str) -> tuple[str, str]:
    if url.startswith("s3://"):
        bucket, _, key = url[5:].partition("/")
        return bucket, key
    match = _VIRTUAL.match(url) or _PATH.match(url)
    if match is None:
        raise LookupError(f"{url} is not an S3 URL")
    return match.group(1), match.group(2)


class S3SnsResults:
    def __init__(self, clients: NeighbourClients) -> None:
        self.clients = clients

    def download(self, url: str, path: Path, max_bytes: int) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = bucket_key(url)
        try:
            answer = self.clients.client("s3").get_object(Bucket=bucket, Key=key)
            length = answer["ContentLength"]
            if length > max_bytes:
                answer["Body"].close()
                raise LookupError(f"The input at {url} is {length} bytes; an asynchronous input may have at most "
                                  f"{max_bytes}.")
            with open(path, "wb") as f:
                for chunk in answer["Body"].iter_chunks(1024 * 1024):
                    f.write(chunk)
            return length
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            raise LookupError(f"Failed to read the input at {url}: {code}.") from None
        except BotoCoreError as exc:  # no key (`s3://bucket/`), or S3 out of reach: still the input's failure
            raise LookupError(f"Failed to read the input at {url}: {exc}") from None

    def fetch(self, url: str, directory: Path, max_bytes: int) -> int:
        """The object `url` names, into `directory` under its own name; or, when it names a prefix
        (a SageMaker channel's folder), every object below it, at its path below the prefix.
        At most `max_bytes` in all; LookupError saying why not. Returns the objects fetched."""
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, prefix = bucket_key(url)
        s3, fetched, total = self.clients.client("s3"), 0, 0
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    relative = Path(item["Key"].rsplit("/", 1)[-1] if item["Key"] == prefix
                                    else item["Key"][len(prefix):].lstrip("/"))
                    if not relative.parts or ".." in relative.parts or item["Key"].endswith("/"):
                        continue  # a folder marker, or a key that would leave the directory
                    total += item["Size"]
                    if total > max_bytes:
                        raise LookupError(f"The data at {url} is larger than {max_bytes} bytes.")
                    target = directory / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(bucket, item["Key"], str(target))
                    fetched += 1
        except ClientError as exc:
            raise LookupError(f"Failed to read {url}: {exc.response.get('Error', {}).get('Code')}.") from None
        except BotoCoreError as exc:
            raise LookupError(f"Failed to read {url}: {exc}") from None
        if not fetched:
            raise LookupError(f"There is no data at {url}.")
        return fetched

    def write(self, url: str, body: Body, content_type: str) -> None:
        bucket, key = bucket_key(url)
        s3 = self.clients.client("s3")
        if isinstance(body, FileBody):  # boto3 sends it from the file
            with open(body.path, "rb") as f:
                s3.put_object(Bucket=bucket, Key=key, Body=f, ContentType=content_type)
        else:
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    def notify(self, topic_arn: str, message: Mapping[str, Any], subject: str | None = None) -> None:
        region = topic_arn.split(":")[3] if topic_arn.count(":") >= 5 else self.clients.region
        self.clients.client("sns", region).publish(TopicArn=topic_arn, Message=json.dumps(message),
                                                   **({"Subject": subject} if subject else {}))
