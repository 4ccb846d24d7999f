"""SageMaker's texts for a model that failed: a ModelError names the container's status and
message and points at the endpoint's log group."""

from __future__ import annotations

from sagemaker_emu import arns
from sagemaker_emu.errors import ModelFailure
from sagemaker_emu.runtime.api import Target


def model_error(target: Target, status: int, body: bytes | None) -> ModelFailure:
    """The container answered `status` with `body` (None: it could not be read whole)."""
    kind = "client" if 400 <= status < 500 else "server"
    if body is None:
        see, arn = see_logs(target)
        message = f"Received {kind} error ({status}) from primary and could not load the entire response body. {see}"
        return ModelFailure(message, status, "", arn)
    return from_primary(target, kind, status, body.decode("utf-8", errors="replace"))


def timeout(target: Target) -> ModelFailure:
    return from_primary(target, "server", 0, (
        "Your invocation timed out while waiting for a response from container primary. Review the "
        "latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again."))


def broken(target: Target) -> ModelFailure:
    return from_primary(target, "server", 0, "The container closed the connection before it sent a complete response.")


def no_model_data(url: str, why: str) -> str:
    """SageMaker's text when a TargetModel names nothing under the model's S3 prefix."""
    if url.startswith("s3://"):
        bucket, _, key = url[len("s3://"):].partition("/")
        return (f"Failed to download model data(bucket: {bucket}, key: {key}). Please ensure that there is an "
                "object located at the URL and that the role passed to CreateModel has permissions to download "
                "the model.")
    return f"Failed to download model data: {why}"


def see_logs(target: Target) -> tuple[str, str]:
    """The sentence pointing at the endpoint's log group, and that group's ARN."""
    region, account, name = target.region, target.account, target.name
    see = (f"See https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:"
           f"group=/aws/sagemaker/Endpoints/{name} in account {account} for more information.")
    return see, arns.arn("logs", region, account, f"log-group:/aws/sagemaker/Endpoints/{name}")


def from_primary(target: Target, kind: str, status: int, text: str) -> ModelFailure:
    see, arn = see_logs(target)
    return ModelFailure(f'Received {kind} error ({status}) from primary with message "{text}". {see}', status, text, arn)
