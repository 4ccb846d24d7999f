"""Amazon Resource Names, in every partition: the one place an ARN is spelled out or read.

A region's partition is `aws-cn` for China (`cn-*`), `aws-us-gov` for GovCloud
(`us-gov-*`), else `aws`; an ARN written with `arn:aws:` alone names nothing there (an alarm's
SNS action in cn-north-1 was silently dropped that way).
"""

from __future__ import annotations

from typing import NamedTuple


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def arn(service: str, region: str, account: str, resource: str) -> str:
    """`arn:<partition>:<service>:<region>:<account>:<resource>`; `region` may be "" (IAM,
    STS), and then the partition is the one of `partition_region`'s caller: use `global_arn`."""
    return f"arn:{partition(region)}:{service}:{region}:{account}:{resource}"


def global_arn(service: str, region: str, account: str, resource: str) -> str:
    """An ARN of a global service (IAM, STS: no region in it), in the partition of `region`."""
    return f"arn:{partition(region)}:{service}::{account}:{resource}"


class Arn(NamedTuple):
    partition: str
    service: str
    region: str
    account: str
    resource: str


def parse(text: str) -> Arn | None:
    """The parts of an ARN of any partition, or None if `text` is not one."""
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[1].startswith("aws"):
        return None
    return Arn(*parts[1:])


def service_of(text: str) -> str | None:
    found = parse(text)
    return found.service if found else None
