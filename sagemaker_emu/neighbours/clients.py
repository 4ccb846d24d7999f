"""boto3 clients with which the emulator itself reaches its neighbours: the embedded ones at
its own URL (known once the server has bound its port), or a real endpoint per service
(`--s3-endpoint`), so that the code that fetches model data or writes async results is the
same for both."""

from __future__ import annotations

import threading
from typing import Any, Mapping

SELF_CREDENTIALS = ("testing", "testing")  # any key works against the embedded services


class NeighbourClients:
    def __init__(self, region: str, endpoints: Mapping[str, str] | None = None,
                 credentials: tuple[str, str] | None = None) -> None:
        self.region = region
        self.endpoints = dict(endpoints or {})  # service -> URL of a real endpoint
        self.credentials = credentials or SELF_CREDENTIALS  # for calls to our own URL
        self.own_url: str | None = None  # set by the HTTP server once it listens
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def external(self, service: str) -> str | None:
        return self.endpoints.get(service)

    def client(self, service: str, region: str | None = None) -> Any:
        """A shared boto3 client (boto3 clients are thread-safe) for `service` in `region`
        (SNS topics and SQS queues belong to a region; S3 does not mind)."""
        region = region or self.region
        found = self._clients.get((service, region))
        if found is not None:
            return found
        import boto3
        from botocore.config import Config

        url = self.endpoints.get(service)
        keys: dict[str, str] = {}
        if url is None:
            if self.own_url is None:
                raise RuntimeError("the emulator is not listening yet, so its own services cannot be reached")
            url = self.own_url
            keys = {"aws_access_key_id": self.credentials[0], "aws_secret_access_key": self.credentials[1]}
        elif boto3.session.Session().get_credentials() is None:  # a local S3-compatible server
            keys = {"aws_access_key_id": SELF_CREDENTIALS[0], "aws_secret_access_key": SELF_CREDENTIALS[1]}
        config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=60,
                        s3={"addressing_style": "path"})
        with self._lock:
            made = self._clients.get((service, region))
            if made is None:
                made = self._clients[(service, region)] = boto3.session.Session().client(
                    service, endpoint_url=url, region_name=region, config=config, **keys)
            return made
