import datetime as dt

import pytest
from botocore.exceptions import ClientError
from dateutil.tz import tzlocal

from sagemaker_emu.testing import client

ACCOUNT = "123456789012"


def test_create_describe_delete(sm):
    arn = sm.create_model(
        ModelName="My-Model",
        PrimaryContainer={"Image": "sagemaker-emu/echo", "Environment": {"A": "1"}},
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole",
        Tags=[],
    )["ModelArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/My-Model"
    model = sm.describe_model(ModelName="My-Model")
    assert model["ModelName"] == "My-Model"
    assert model["ModelArn"] == arn
    assert model["PrimaryContainer"] == {"Image": "sagemaker-emu/echo", "Mode": "SingleModel", "Environment": {"A": "1"}}
    assert model["ExecutionRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"
    assert model["EnableNetworkIsolation"] is False
    assert isinstance(model["CreationTime"], dt.datetime) and model["CreationTime"].tzinfo == tzlocal()
    sm.delete_model(ModelName="My-Model")
    with pytest.raises(ClientError) as info:
        sm.describe_model(ModelName="My-Model")
    assert info.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": f'Could not find model "arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/My-Model".',
    }


def test_duplicate_names_are_case_insensitive(sm):
    sm.create_model(ModelName="dup", PrimaryContainer={"Image": "img"})
    with pytest.raises(ClientError) as info:
        sm.create_model(ModelName="DUP", PrimaryContainer={"Image": "img"})
    assert info.value.response["Error"]["Message"] == (
        f'Cannot create already existing model "arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/DUP".')


def test_delete_missing_model(sm):
    with pytest.raises(ClientError) as info:
        sm.delete_model(ModelName="ghost")
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_region_comes_from_the_request_and_scopes_resources(server):
    west = client(server.url, region="eu-west-1")
    arn = west.create_model(ModelName="m", PrimaryContainer={"Image": "img"})["ModelArn"]
    assert arn == f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model/m"
    east = client(server.url, region="us-east-1")
    assert east.list_models()["Models"] == []
    cn = client(server.url, region="cn-north-1")
    assert cn.create_model(ModelName="m", PrimaryContainer={"Image": "img"})["ModelArn"].startswith("arn:aws-cn:")


def test_containers_are_required_and_exclusive(sm):
    with pytest.raises(ClientError) as info:
        sm.create_model(ModelName="m")
    assert info.value.response["Error"]["Message"] == "Either PrimaryContainer or Containers must be specified."
    with pytest.raises(ClientError):
        sm.create_model(ModelName="m", PrimaryContainer={"Image": "a"}, Containers=[{"Image": "b"}])


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"ModelName": ""}, "Value '' at 'modelName' failed to satisfy constraint: Member must satisfy regular expression pattern"),
        ({"ModelName": "a" * 64}, "at 'modelName' failed to satisfy constraint: Member must have length less than or equal to 63"),
        ({"ModelName": "m", "ExecutionRoleArn": "arn:aws:iam::1:role/x" + "y" * 10},
         "at 'executionRoleArn' failed to satisfy constraint: Member must satisfy regular expression pattern"),
        ({"ModelName": "m", "Containers": [{"Image": "i"}] * 16},
         "at 'containers' failed to satisfy constraint: Member must have length less than or equal to 15"),
        ({"ModelName": "m", "PrimaryContainer": {"Image": "i", "Mode": "Bogus"}},
         "Value 'Bogus' at 'primaryContainer.mode' failed to satisfy constraint: Member must satisfy enum value set: [SingleModel, MultiModel]"),
        ({"ModelName": "m", "PrimaryContainer": {"Image": "i"}, "Tags": [{"Key": "k*", "Value": "v"}]},
         "Value 'k*' at 'tags.1.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern"),
    ],
)
def test_server_side_validation(sm_unvalidated, kwargs, fragment):
    if "Containers" not in kwargs:
        kwargs.setdefault("PrimaryContainer", {"Image": "i"})
    with pytest.raises(ClientError) as info:
        sm_unvalidated.create_model(**kwargs)
    err = info.value.response["Error"]
    assert err["Code"] == "ValidationException"
    assert fragment in err["Message"]
