"""The variables that point a user's clients at a running emulator, and nothing else at it.

One endpoint variable per service the emulator serves (`AWS_ENDPOINT_URL_<SERVICE>`, read by
botocore 1.28 and newer), not `AWS_ENDPOINT_URL`, which would send every other service here
too: inside moto's `@mock_aws`, DynamoDB or CloudFormation must stay moto's. Then dummy
credentials, a region, and the SageMaker SDK's config file (sdk_config.py). `sagemaker-emu env`,
`running()` and the pytest plugin all print or set exactly this.

And `PYTHONPATH` gains a directory whose `sitecustomize.py` is aws_hosts.py, so that the one call
the SageMaker SDK sends to a fixed AWS address (STS, for its caller's role) follows
`AWS_ENDPOINT_URL_STS` here too.
"""

from __future__ import annotations

import os
from pathlib import Path

from sagemaker_emu import aws_hosts, sdk_config

# The botocore client names whose calls the emulator answers: SageMaker and its runtime, the
# services that reflect its fleet, and the embedded neighbours (tests/unit/test_client_env.py
# checks each against the services the server routes).
CLIENTS = ("sagemaker", "sagemaker-runtime", "cloudwatch", "logs", "application-autoscaling",
           "s3", "sns", "sqs", "sts", "iam")
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def endpoint_variables(url: str, elsewhere: dict[str, str] | None = None) -> dict[str, str]:
    """Each served client's variable -> `url`, or the URL `elsewhere` gives it (a real S3 the
    emulator was started with, `--s3-endpoint`, which it then does not serve itself)."""
    elsewhere = elsewhere or {}
    return {aws_hosts.endpoint_variable(client): elsewhere.get(client, url) for client in CLIENTS}


def _private(path: Path) -> bool:
    """Whether `path` is a real directory of this user that no one else may write: code on
    PYTHONPATH runs in every interpreter started with it, so it must not come from a shared
    temporary directory another user made first."""
    info = path.lstat()
    others_may_write = info.st_mode & 0o002 or (info.st_mode & 0o020 and info.st_gid != os.getgid())
    return path.is_dir() and not path.is_symlink() and info.st_uid == os.getuid() and not others_may_write


def python_path(cache: Path) -> dict[str, str]:
    """{"PYTHONPATH": ...} with a directory under `cache` whose sitecustomize.py is aws_hosts.py
    put first, or {} if it cannot be written, or is not this user's alone (the SDK's STS call
    then goes to AWS, as before)."""
    directory = cache / "python"
    source = Path(aws_hosts.__file__).read_text()
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not (_private(cache) and _private(directory)):
            return {}
        target = directory / "sitecustomize.py"
        if not target.exists() or target.read_text() != source:
            staged = directory / f".sitecustomize.{os.getpid()}.tmp"
            staged.write_text(source)
            staged.replace(target)  # an interpreter starting now never reads half a file
    except OSError:
        return {}
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(directory)]
    return {"PYTHONPATH": os.pathsep.join([str(directory), *rest])}


def environment(url: str, region: str, account: str, cache: Path,
                elsewhere: dict[str, str] | None = None) -> dict[str, str]:
    """Everything that points boto3 and the SageMaker SDK at the emulator at `url`; files it
    names are written under `cache`."""
    return {**endpoint_variables(url, elsewhere), "AWS_DEFAULT_REGION": region, **DUMMY_CREDENTIALS,
            **sdk_config.environment(cache, region, account), **python_path(cache)}


def bearer_token(access_key: str, secret_key: str, region: str, expires: int = 43200) -> str:
    """A SageMaker bearer token, as the SageMaker SDK v3's `generate_token` makes one (a
    presigned CallWithBearerToken request, base64-encoded), for OpenAI clients on the
    OpenAI-compatible path."""
    import base64

    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url="https://sagemaker.amazonaws.com/",
                         headers={"host": "sagemaker.amazonaws.com"}, params={"Action": "CallWithBearerToken"})
    SigV4QueryAuth(Credentials(access_key, secret_key), "sagemaker", region, expires=expires).add_auth(request)
    presigned = request.url.replace("https://", "") + "&Version=1"
    return "sagemaker-api-key-" + base64.b64encode(presigned.encode()).decode()


def openai_variables(url: str, region: str, endpoint: str, component: str | None = None,
                     credentials: tuple[str, str] | None = None) -> dict[str, str]:
    """OPENAI_BASE_URL and OPENAI_API_KEY, which the OpenAI SDK (and LangChain's ChatOpenAI)
    read, for an endpoint's (or a component's) OpenAI-compatible path."""
    path = f"/endpoints/{endpoint}" + (f"/inference-components/{component}" if component else "") + "/openai/v1"
    key, secret = credentials or (DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"], DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    return {"OPENAI_BASE_URL": url.rstrip("/") + path, "OPENAI_API_KEY": bearer_token(key, secret, region)}
