"""A multi-model variant's loading against a container server in this process (the container is
the neighbour here): the container's 507 makes room by unloading the least recently used model,
and a model a call is using is never unloaded under it."""

import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from sagemaker_emu.fleet.api import LoadFailed
from sagemaker_emu.fleet.model_data import prepare
from sagemaker_emu.fleet.multi_model import MultiModels
from sagemaker_emu.worker.contract import Model, Reply
from sagemaker_emu.worker.multi_model import MultiModel
from sagemaker_emu.worker.server import ContainerServer


class Weights(Model):
    def __init__(self, model_dir: Path) -> None:
        self.text = (model_dir / "weights").read_text()

    def invoke(self, invocation):
        return Reply(body=self.text.encode())


@dataclass
class FakeInstance:
    """What MultiModels reads of an instance."""

    id: str
    port: int
    log_path: Path
    host: str = "127.0.0.1"
    pid: int | None = 1


@pytest.fixture
def container(tmp_path):
    """A container with room for one model: a second load answers 507 until the first is gone."""
    holder = {}

    def load(model_dir: Path) -> Model:
        if holder["server"].model._models:
            raise MemoryError()
        return Weights(model_dir)

    server = ContainerServer(("127.0.0.1", 0), MultiModel(load))
    holder["server"] = server
    threading.Thread(target=server.serve_forever, daemon=True).start()
    prefix = tmp_path / "models"
    for name in ("a", "b"):
        (prefix / name).mkdir(parents=True)
        (prefix / name / "weights").write_text(name)
    instance = FakeInstance("v-1", server.server_address[1], tmp_path / "instance-1" / "instance.log")
    yield server.model, instance, f"file://{prefix}/"
    server.shutdown()
    server.server_close()


def test_a_507_unloads_the_least_recently_used_model_and_retries(container):
    mm, instance, prefix = container
    models = MultiModels(prefix, cache_enabled=True, memory_bytes=None, max_models=0,
                         fetch=lambda source, path: prepare(source, path, roots=[Path("/")]))
    first = models.ensure(instance, "a")
    models.done(instance, first)
    second = models.ensure(instance, "b")
    assert not second.hit and len(second.unloads_s) == 1  # a went to make room
    assert models.loaded(instance) == ["b"] and list(mm._models) == [second.name]
    models.done(instance, second)


def test_a_model_in_use_is_not_unloaded_for_another(container):
    mm, instance, prefix = container
    models = MultiModels(prefix, cache_enabled=True, memory_bytes=None, max_models=0,
                         fetch=lambda source, path: prepare(source, path, roots=[Path("/")]))
    in_use = models.ensure(instance, "a")  # its call has not finished
    with pytest.raises(LoadFailed) as failed:
        models.ensure(instance, "b")
    assert failed.value.status == 507
    assert models.loaded(instance) == ["a"]
    models.done(instance, in_use)
    assert models.ensure(instance, "b").unloads_s  # now a may go


def test_models_loaded_past_the_limit_while_others_were_in_use_go_when_those_calls_end(tmp_path):
    """`--multi-model-cache 1`: a second model loads while the first is in use (it cannot be
    unloaded under its call); once that call ends, the instance is back within its limit."""
    server = ContainerServer(("127.0.0.1", 0), MultiModel(Weights))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        prefix = tmp_path / "models"
        for name in ("a", "b"):
            (prefix / name).mkdir(parents=True)
            (prefix / name / "weights").write_text(name)
        instance = FakeInstance("v-1", server.server_address[1], tmp_path / "instance-1" / "instance.log")
        models = MultiModels(f"file://{prefix}/", cache_enabled=True, memory_bytes=None, max_models=1,
                             fetch=lambda source, path: prepare(source, path, roots=[Path("/")]))
        first = models.ensure(instance, "a")
        second = models.ensure(instance, "b")
        assert models.loaded(instance) == ["a", "b"]  # over the limit while a's call runs
        models.done(instance, first)
        assert models.loaded(instance) == ["b"] and list(server.model._models) == [second.name]
        models.done(instance, second)
        assert models.loaded(instance) == ["b"]
    finally:
        server.shutdown()
        server.server_close()
