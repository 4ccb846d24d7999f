"""A model of several containers (`Containers` in CreateModel), in one instance process.

Serial (an inference pipeline, the default): each container's answer is the next one's
request, its Content-Type with it; only the last container gets the caller's Accept, so the
ones before answer in their default format (SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, as
SageMaker's pipeline guide advises); a non-2xx answer ends the chain. Direct: the call runs
only the container its `X-Amzn-SageMaker-Target-Container-Hostname` names.

SageMaker runs each container in its own process; here they share one, each with its own
Environment and model directory, which keeps an instance one process to supervise.
The fleet writes what runs in a JSON file named by SAGEMAKER_EMU_PIPELINE.
"""

from __future__ import annotations

from typing import Iterable

from sagemaker_emu.worker.contract import Invocation, Model, Reply

PIPELINE_SPEC = "SAGEMAKER_EMU_PIPELINE"
HOSTNAME_HEADER = "x-amzn-sagemaker-target-container-hostname"


class Pipeline(Model):
    def __init__(self, containers: list[tuple[str, Model]], direct: bool) -> None:
        self.containers = containers
        self.by_hostname = dict(containers)
        self.direct = direct
        limits = [m.concurrency for _, m in containers if m.concurrency]
        self.concurrency = min(limits) if limits else None

    def healthy(self) -> bool:
        return all(model.healthy() for _, model in self.containers)

    def get(self, path: str, query: dict[str, str]) -> Reply | None:
        return next((r for _, m in self.containers if (r := m.get(path, query)) is not None), None)

    def invoke(self, invocation: Invocation) -> Reply:
        if self.direct:
            model = self.by_hostname.get(invocation.headers.get(HOSTNAME_HEADER, ""))
            if model is None:
                return Reply(status=404, body=b'{"message": "no container of that hostname"}')
            return model.invoke(invocation)
        step = invocation
        for number, (_, model) in enumerate(self.containers, 1):
            last = number == len(self.containers)
            reply = model.invoke(Invocation(
                body=step.body, content_type=step.content_type, accept=invocation.accept if last else None,
                custom_attributes=invocation.custom_attributes, headers=invocation.headers,
                connected=invocation.connected))
            if last or not 200 <= reply.status < 300:
                return reply
            step = Invocation(body=_whole(reply.body), content_type=reply.content_type)
        raise AssertionError("a pipeline has at least two containers")


def _whole(body: bytes | Iterable[bytes]) -> bytes:
    """An answer passed on to the next container: a streamed one is gathered first."""
    return bytes(body) if isinstance(body, (bytes, bytearray)) else b"".join(body)
