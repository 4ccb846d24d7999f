import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.testing import ECHO_IMAGE as IMAGE, deploy

ACCOUNT = "123456789012"


def test_tags_on_create_add_list_delete(sm):
    arn = sm.create_model(ModelName="m1", PrimaryContainer={"Image": IMAGE},
                          Tags=[{"Key": "team", "Value": "ml"}])["ModelArn"]
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    added = sm.add_tags(ResourceArn=arn, Tags=[{"Key": "team", "Value": "ops"}, {"Key": "env", "Value": "ci"}])
    assert added["Tags"] == [{"Key": "team", "Value": "ops"}, {"Key": "env", "Value": "ci"}]
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ops"}, {"Key": "env", "Value": "ci"}]
    sm.delete_tags(ResourceArn=arn, TagKeys=["team", "not-there"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "ci"}]


def test_tags_on_endpoints_and_configs(sm):
    deploy(sm, "ep1")
    for arn in (f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/ep1",
                f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint-config/ep1-config"):
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}])
        assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "k", "Value": "v"}]


def test_tags_of_unknown_resources(sm):
    arn = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/ghost"
    with pytest.raises(ClientError) as info:
        sm.list_tags(ResourceArn=arn)
    assert info.value.response["Error"] == {"Code": "ValidationException",
                                            "Message": f'Could not find endpoint "{arn}".'}
    with pytest.raises(ClientError):
        sm.add_tags(ResourceArn=f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model/m1", Tags=[{"Key": "k", "Value": "v"}])


def test_deleting_a_resource_drops_its_tags(sm):
    arn = sm.create_model(ModelName="m1", PrimaryContainer={"Image": IMAGE}, Tags=[{"Key": "a", "Value": "1"}])["ModelArn"]
    sm.delete_model(ModelName="m1")
    sm.create_model(ModelName="m1", PrimaryContainer={"Image": IMAGE})
    assert sm.list_tags(ResourceArn=arn)["Tags"] == []


def test_at_most_fifty_tags(sm, sm_unvalidated):
    arn = sm.create_model(ModelName="m1", PrimaryContainer={"Image": IMAGE},
                          Tags=[{"Key": f"k{i}", "Value": ""} for i in range(40)])["ModelArn"]
    with pytest.raises(ClientError) as info:
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": f"n{i}", "Value": ""} for i in range(11)])
    assert "at most 50 tags" in info.value.response["Error"]["Message"]
    assert len(sm.list_tags(ResourceArn=arn)["Tags"]) == 40
    with pytest.raises(ClientError) as info:
        sm_unvalidated.add_tags(ResourceArn=arn, Tags=[{"Key": f"n{i}", "Value": ""} for i in range(51)])
    assert "at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50" in info.value.response["Error"]["Message"]
