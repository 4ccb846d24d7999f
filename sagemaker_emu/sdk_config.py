"""The SageMaker Python SDK's config file, naming the default bucket, so that SDK code runs unchanged.

Without a bucket, `Session.default_bucket()` (SDK v2 and v3) asks STS for the account at a fixed
AWS address that `AWS_ENDPOINT_URL` does not reach. Both SDK lines read
`SageMaker.PythonSDK.Modules.Session.DefaultS3Bucket` from the file that
`SAGEMAKER_USER_CONFIG_OVERRIDE` names, and then make no STS call. A user who has their own
SDK config keeps it: nothing is offered then, and docs/sdk.md gives the line to add.
"""

from __future__ import annotations

import os
from pathlib import Path

VARIABLE = "SAGEMAKER_USER_CONFIG_OVERRIDE"
USER_FILE = Path("~/.config/sagemaker/config.yaml")  # where the SDK looks without the variable


def default_bucket(region: str, account: str) -> str:
    return f"sagemaker-{region}-{account}"  # the name the SDK would give it


def environment(directory: Path, region: str, account: str) -> dict[str, str]:
    """`{VARIABLE: path}` of a config file in `directory` naming the default bucket, or {} when the
    user has an SDK config of their own."""
    if os.environ.get(VARIABLE) or USER_FILE.expanduser().exists():
        return {}
    path = directory / f"sagemaker-sdk-config-{region}-{account}.yaml"
    text = ("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      Session:\n"
            f"        DefaultS3Bucket: {default_bucket(region, account)}\n")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            staged = path.with_suffix(f".{os.getpid()}.tmp")
            staged.write_text(text)
            staged.replace(path)  # readers never see half a file
    except OSError:  # a directory we may not write (another user's, say): the SDK then asks STS, as before
        return {}
    return {VARIABLE: str(path)}
