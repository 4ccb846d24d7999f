"""Multi-model endpoints (Mode MultiModel): each call's TargetModel is fetched from under the
model's S3 prefix and loaded on the instance it reaches, through SageMaker's multi-model
container contract; loaded models are reused, evicted least recently used, and counted in
SageMaker's model loading metrics."""

import datetime
import json

import pytest
from botocore.exceptions import WaiterError

from sagemaker_emu.testing import EmulatorProcess, client, deploy, variant
from tests.integration.test_aws_images import SKLEARN, tarball

BUCKET = "mme-models"
# Each archive brings its own inference.py, as with SageMaker's framework images; model_fn reads
# the weight file beside it, so an answer shows which model's files served it.
INFERENCE = b'''
import json, os

def model_fn(model_dir):
    with open(os.path.join(model_dir, "weight.txt")) as f:
        return float(f.read())

def predict_fn(data, model):
    return {"y": [model * x for x in data["x"]], "pid": os.getpid()}
'''
BROKEN = b"def model_fn(model_dir):\n    raise RuntimeError('no weights here')\n"


def upload(server, models: dict[str, float | None]) -> None:
    s3 = client(server.url, "s3")
    s3.create_bucket(Bucket=BUCKET)
    for name, weight in models.items():
        files = ({"code/inference.py": INFERENCE, "weight.txt": str(weight).encode()} if weight is not None
                 else {"code/inference.py": BROKEN})
        s3.put_object(Bucket=BUCKET, Key=f"models/{name}.tar.gz", Body=tarball(files))


def deploy_mme(sm, name: str = "mme", instances: int = 1, **container) -> None:
    deploy(sm, name, container={"Image": SKLEARN, "Mode": "MultiModel", "ModelDataUrl": f"s3://{BUCKET}/models/",
                                **container},
           variants=[variant(model=f"{name}-model", InitialInstanceCount=instances)])


def call(rt, target: str, endpoint: str = "mme", x=(1, 2)) -> dict:
    answer = rt.invoke_endpoint(EndpointName=endpoint, TargetModel=target, ContentType="application/json",
                                Body=json.dumps({"x": list(x)}))
    return json.loads(answer["Body"].read())


def loaded(server, endpoint: str = "mme") -> dict[str, list[str]]:
    """Each instance's loaded models, from /_emu."""
    status, _, body = server.post(f"/_emu/endpoints/{endpoint}", method="GET")
    assert status == 200, body
    return {i["id"]: i["models"] for v in json.loads(body)["variants"] for i in v["instances"]}


def test_each_target_model_is_loaded_on_first_call_and_reused(server, sm, rt):
    upload(server, {"double": 2.0, "triple": 3.0})
    deploy_mme(sm)
    assert call(rt, "double.tar.gz")["y"] == [2.0, 4.0]
    assert call(rt, "triple.tar.gz")["y"] == [3.0, 6.0]
    first = call(rt, "double.tar.gz")
    assert first["y"] == [2.0, 4.0]
    assert call(rt, "double.tar.gz")["pid"] == first["pid"]  # one container serves both models
    assert sorted(next(iter(loaded(server).values()))) == ["double.tar.gz", "triple.tar.gz"]

    # SageMaker's model loading metrics: two misses then two hits, and one loaded-model count per instance
    cw = client(server.url, "cloudwatch")
    dims = [{"Name": "EndpointName", "Value": "mme"}, {"Name": "VariantName", "Value": "AllTraffic"}]
    end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1)

    def stat(name: str, statistic: str, namespace: str = "AWS/SageMaker") -> float:
        points = cw.get_metric_statistics(Namespace=namespace, MetricName=name, Dimensions=dims, Period=3600,
                                          StartTime=end - datetime.timedelta(hours=1), EndTime=end,
                                          Statistics=[statistic])["Datapoints"]
        return points[0][statistic] if points else 0.0

    assert stat("ModelCacheHit", "SampleCount") == 4 and stat("ModelCacheHit", "Sum") == 2
    assert stat("ModelLoadingWaitTime", "SampleCount") == 2 and stat("ModelLoadingTime", "SampleCount") == 2
    assert stat("ModelDownloadingTime", "Maximum") > 0


def test_a_loaded_model_draws_its_calls_to_the_instance_that_holds_it(server, sm, rt):
    upload(server, {"double": 2.0})
    deploy_mme(sm, instances=3)
    pids = {call(rt, "double.tar.gz")["pid"] for _ in range(8)}
    assert len(pids) == 1  # loaded once, on one instance, and sent there from then on
    assert sum(len(models) for models in loaded(server).values()) == 1


def test_a_restarted_container_loads_its_models_again(server, sm, rt):
    import os
    import signal

    from tests.integration.test_fleet import eventually

    upload(server, {"double": 2.0})
    deploy_mme(sm)
    before = call(rt, "double.tar.gz")["pid"]
    os.kill(before, signal.SIGKILL)

    def restarted():
        status, _, body = server.post("/_emu/endpoints/mme", method="GET")
        [instance] = json.loads(body)["variants"][0]["instances"]
        return instance["health"] == "Healthy" and instance["pid"] not in (None, before)

    eventually(restarted)
    assert loaded(server) == {"AllTraffic-1": []}  # the new container holds nothing
    answer = call(rt, "double.tar.gz")  # so the model is loaded again, not invoked where it is not
    assert answer["y"] == [2.0, 4.0] and answer["pid"] != before


def test_the_refusals_name_what_is_wrong(server, sm, rt):
    upload(server, {"double": 2.0, "broken": None})
    deploy_mme(sm)
    with pytest.raises(rt.exceptions.ValidationError, match="is missing a target model header"):
        rt.invoke_endpoint(EndpointName="mme", Body=b"{}", ContentType="application/json")
    with pytest.raises(rt.exceptions.ValidationError,
                       match=r"Failed to download model data\(bucket: mme-models, key: models/absent.tar.gz\)"):
        call(rt, "absent.tar.gz")
    # the model's pattern is Java's \p{Print}, ASCII only; the name is read as botocore sends it (UTF-8)
    with pytest.raises(rt.exceptions.ValidationError, match="Value 'modèle.tar.gz' at 'targetModel' failed"):
        call(rt, "modèle.tar.gz")
    with pytest.raises(rt.exceptions.ModelError, match="RuntimeError: no weights here"):
        call(rt, "broken.tar.gz")
    assert call(rt, "double.tar.gz")["y"] == [2.0, 4.0]  # the failures left the instance serving
    deploy(sm, "single")
    with pytest.raises(rt.exceptions.ValidationError, match="not a multi-model endpoint"):
        call(rt, "double.tar.gz", endpoint="single")


def test_a_target_model_may_begin_with_any_character_the_pattern_allows(server, sm, rt):
    """Issue 25 item 7: `\\S` admits 😀 as the first character; the header to the container was
    encoded as latin-1, and the call was a 500."""
    upload(server, {"😀": 2.0, "中": 3.0})
    deploy_mme(sm)
    assert call(rt, "😀.tar.gz")["y"] == [2.0, 4.0]
    assert call(rt, "中.tar.gz")["y"] == [3.0, 6.0]


def test_a_local_prefix_keeps_target_models_inside_it(server, sm, rt, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "double.tar.gz").write_bytes(tarball({"code/inference.py": INFERENCE, "weight.txt": b"2"}))
    (tmp_path / "secret.tar.gz").write_bytes(tarball({"code/inference.py": INFERENCE, "weight.txt": b"9"}))
    deploy(sm, "local", container={"Image": SKLEARN, "Mode": "MultiModel", "ModelDataUrl": f"file://{models}/"})
    assert call(rt, "double.tar.gz", endpoint="local")["y"] == [2.0, 4.0]
    for escape in ("../secret.tar.gz", "sub/../../secret.tar.gz"):
        with pytest.raises(rt.exceptions.ValidationError, match="relative to the model's prefix"):
            call(rt, escape, endpoint="local")
    with pytest.raises(rt.exceptions.ValidationError, match="does not exist"):
        call(rt, "%2e%2e/secret.tar.gz", endpoint="local")  # a literal name under the prefix, not URL syntax
    with pytest.raises(rt.exceptions.ValidationError, match="cannot be read: File name too long"):
        call(rt, "a" * 1000, endpoint="local")  # was a 500


def test_a_local_prefix_names_each_model_once_and_any_legal_name_loads(server, sm, rt, tmp_path):
    """Issue 25 item 7: `.` loaded the whole prefix as one model; `./a`, `a/` and `sub//a` loaded
    copies of one file; `#`, `?` and `%41` were read as URL syntax and did not load."""
    models = tmp_path / "models"
    (models / "sub").mkdir(parents=True)
    for name, weight in (("double.tar.gz", b"2"), ("h#sh.tar.gz", b"3"), ("q?.tar.gz", b"4"), ("p%41.tar.gz", b"5"),
                         ("sub/deep.tar.gz", b"6")):
        (models / name).write_bytes(tarball({"code/inference.py": INFERENCE, "weight.txt": weight}))
    deploy(sm, "names", container={"Image": SKLEARN, "Mode": "MultiModel", "ModelDataUrl": f"file://{models}/"})
    with pytest.raises(rt.exceptions.ValidationError, match="names the model's prefix itself"):
        call(rt, ".", endpoint="names")
    for spelling in ("double.tar.gz", "./double.tar.gz", "double.tar.gz/"):
        assert call(rt, spelling, endpoint="names")["y"] == [2.0, 4.0]
    assert call(rt, "sub//deep.tar.gz", endpoint="names")["y"] == call(rt, "sub/deep.tar.gz", endpoint="names")["y"]
    for name, weight in (("h#sh.tar.gz", 3.0), ("q?.tar.gz", 4.0), ("p%41.tar.gz", 5.0)):
        assert call(rt, name, endpoint="names")["y"] == [weight, 2 * weight]
    [held] = loaded(server, "names").values()
    assert sorted(held) == sorted(["double.tar.gz", "sub/deep.tar.gz", "h#sh.tar.gz", "q?.tar.gz", "p%41.tar.gz"])


def test_where_multi_model_models_cannot_run_the_endpoint_fails_saying_why(server, sm):
    from tests.integration.test_aws_images import TGI

    mme = {"Mode": "MultiModel", "ModelDataUrl": f"s3://{BUCKET}/models/"}
    serverless = {"VariantName": "AllTraffic", "ModelName": "mme-sls-model",
                  "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2}}
    deploy(sm, "mme-tgi", wait=False, container={"Image": TGI, **mme})
    deploy(sm, "mme-sls", wait=False, container={"Image": SKLEARN, **mme}, variants=[serverless])
    for name, why in (("mme-tgi", "do not serve multi-model endpoints"),
                      ("mme-sls", "Serverless endpoints do not support multi-model models")):
        with pytest.raises(WaiterError):
            sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1})
        assert why in sm.describe_endpoint(EndpointName=name)["FailureReason"]


@pytest.fixture(scope="module")
def small_cache():
    """A server whose multi-model instances hold at most two models (`--multi-model-cache 2`)."""
    srv = EmulatorProcess("--multi-model-cache", "2")
    yield srv
    srv.stop()


def test_the_least_recently_used_model_is_unloaded_for_a_new_one(small_cache):
    sm, rt = client(small_cache.url), client(small_cache.url, "sagemaker-runtime")
    upload(small_cache, {"a": 1.0, "b": 2.0, "c": 3.0})
    deploy_mme(sm)
    call(rt, "a.tar.gz"), call(rt, "b.tar.gz"), call(rt, "a.tar.gz")  # b is now the least recently used
    assert call(rt, "c.tar.gz")["y"] == [3.0, 6.0]
    assert sorted(next(iter(loaded(small_cache).values()))) == ["a.tar.gz", "c.tar.gz"]
    assert call(rt, "b.tar.gz")["y"] == [2.0, 4.0]  # loaded again, in place of a
    assert sorted(next(iter(loaded(small_cache).values()))) == ["b.tar.gz", "c.tar.gz"]


def test_model_cache_disabled_unloads_each_model_after_its_call(server, sm, rt):
    upload(server, {"double": 2.0})
    deploy_mme(sm, MultiModelConfig={"ModelCacheSetting": "Disabled"})
    assert call(rt, "double.tar.gz")["y"] == [2.0, 4.0]
    assert next(iter(loaded(server).values())) == []
    assert call(rt, "double.tar.gz")["y"] == [2.0, 4.0]
