import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.testing import variant

ACCOUNT = "123456789012"


@pytest.fixture
def model(sm):
    sm.create_model(ModelName="m1", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    return "m1"


def error(info):
    return info.value.response["Error"]


ROUTING = [
    {"RoutingStrategy": "RANDOM"},
    {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
    {"RoutingStrategy": "PREFIX_AWARE", "PrefixAwareRoutingConfig": {"PrefixLength": 2048, "ConcurrencyThreshold": 8}},
    {"RoutingStrategy": "KV_AWARE"},
]


@pytest.mark.parametrize("routing", ROUTING, ids=lambda r: r["RoutingStrategy"])
def test_routing_config_is_echoed_exactly(sm, model, routing):
    sm.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[variant(RoutingConfig=routing)])
    described = sm.describe_endpoint_config(EndpointConfigName="c1")["ProductionVariants"][0]
    assert described["RoutingConfig"] == routing


def test_describe_returns_what_was_created_with_float_weights(sm, model):
    arn = sm.create_endpoint_config(
        EndpointConfigName="Cfg-1",
        ProductionVariants=[variant("a", InitialVariantWeight=3), variant("b")],
        Tags=[{"Key": "team", "Value": "ml"}],
    )["EndpointConfigArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint-config/Cfg-1"
    config = sm.describe_endpoint_config(EndpointConfigName="Cfg-1")
    assert config["EndpointConfigName"] == "Cfg-1"
    assert config["EndpointConfigArn"] == arn
    weights = [v["InitialVariantWeight"] for v in config["ProductionVariants"]]
    assert weights == [3.0, 1.0] and all(isinstance(w, float) for w in weights)
    assert config["ProductionVariants"][0] == {
        "VariantName": "a", "ModelName": "m1", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1,
        "InitialVariantWeight": 3.0,
    }
    assert "CreationTime" in config


def test_missing_model(sm):
    with pytest.raises(ClientError) as info:
        sm.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[variant(model="nope")])
    assert error(info) == {"Code": "ValidationException",
                           "Message": f'Could not find model "arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/nope".'}
    with pytest.raises(ClientError):
        sm.describe_endpoint_config(EndpointConfigName="c1")  # nothing was stored


def test_duplicate_config_and_duplicate_variants(sm, model):
    sm.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[variant()])
    with pytest.raises(ClientError) as info:
        sm.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[variant()])
    assert error(info)["Message"] == (
        f'Cannot create already existing endpoint configuration "arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint-config/c1".')
    with pytest.raises(ClientError) as info:
        sm.create_endpoint_config(EndpointConfigName="c2", ProductionVariants=[variant("v"), variant("v")])
    assert error(info)["Message"] == 'The variant name "v" was non-unique within the request.'


def test_prefix_aware_rules(sm, sm_unvalidated, model):
    with pytest.raises(ClientError) as info:
        sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
            variant(RoutingConfig={"RoutingStrategy": "PREFIX_AWARE"})])
    assert "'productionVariants.1.member.routingConfig.prefixAwareRoutingConfig' failed to satisfy constraint: " \
           "Member must not be null" in error(info)["Message"]
    with pytest.raises(ClientError) as info:
        sm_unvalidated.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant(RoutingConfig={
            "RoutingStrategy": "PREFIX_AWARE", "PrefixAwareRoutingConfig": {"PrefixLength": 70000, "ConcurrencyThreshold": 0}})])
    message = error(info)["Message"]
    assert message.startswith("2 validation errors detected: ")
    assert "Value '70000' at 'productionVariants.1.member.routingConfig.prefixAwareRoutingConfig.prefixLength' " \
           "failed to satisfy constraint: Member must have value less than or equal to 65536" in message
    assert "Value '0' at 'productionVariants.1.member.routingConfig.prefixAwareRoutingConfig.concurrencyThreshold' " \
           "failed to satisfy constraint: Member must have value greater than or equal to 1" in message
    with pytest.raises(ClientError) as info:
        sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant(RoutingConfig={
            "RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS",
            "PrefixAwareRoutingConfig": {"PrefixLength": 2048, "ConcurrencyThreshold": 2}})])
    assert error(info)["Message"] == "PrefixAwareRoutingConfig can be specified only when RoutingStrategy is PREFIX_AWARE."


@pytest.mark.parametrize(
    "bad,fragment",
    [
        ({"InstanceType": "ml.bogus"}, "Value 'ml.bogus' at 'productionVariants.1.member.instanceType' failed to satisfy constraint: Member must satisfy enum value set: [ml.t2.medium,"),
        ({"InitialInstanceCount": 0}, "Value '0' at 'productionVariants.1.member.initialInstanceCount' failed to satisfy constraint: Member must have value greater than or equal to 1"),
        ({"InitialVariantWeight": -1.0}, "Value '-1.0' at 'productionVariants.1.member.initialVariantWeight' failed to satisfy constraint: Member must have value greater than or equal to 0"),
        ({"VariantName": "bad_name"}, "Value 'bad_name' at 'productionVariants.1.member.variantName' failed to satisfy constraint: Member must satisfy regular expression pattern"),
        ({"ModelName": "ENTER MODEL NAME"}, "Value 'ENTER MODEL NAME' at 'productionVariants.1.member.modelName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?"),
        ({"RoutingConfig": {"RoutingStrategy": "ROUND_ROBIN"}}, "Member must satisfy enum value set: [LEAST_OUTSTANDING_REQUESTS, RANDOM, PREFIX_AWARE, KV_AWARE]"),
        ({"ContainerStartupHealthCheckTimeoutInSeconds": 4000}, "Member must have value less than or equal to 3600"),
    ],
)
def test_variant_constraints(sm_unvalidated, model, bad, fragment):
    with pytest.raises(ClientError) as info:
        sm_unvalidated.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[{**variant(), **bad}])
    assert error(info)["Code"] == "ValidationException"
    assert fragment in error(info)["Message"]


def test_too_many_variants_and_none(sm_unvalidated, model):
    with pytest.raises(ClientError) as info:
        sm_unvalidated.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant(f"v{i}") for i in range(11)])
    assert "at 'productionVariants' failed to satisfy constraint: Member must have length less than or equal to 10" in error(info)["Message"]
    with pytest.raises(ClientError) as info:
        sm_unvalidated.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[])
    assert "Member must have length greater than or equal to 1" in error(info)["Message"]


def test_serverless_variants(sm, model):
    serverless = {"VariantName": "s", "ModelName": "m1", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}
    sm.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[serverless])
    with pytest.raises(ClientError) as info:
        sm.create_endpoint_config(EndpointConfigName="c2", ProductionVariants=[serverless, variant()])
    assert "cannot be mixed" in error(info)["Message"]
    bad = {**serverless, "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5, "ProvisionedConcurrency": 6}}
    with pytest.raises(ClientError) as info:
        sm.create_endpoint_config(EndpointConfigName="c3", ProductionVariants=[bad])
    assert "ProvisionedConcurrency must be less than or equal to MaxConcurrency" in error(info)["Message"]


def test_zero_total_weight_is_refused(sm, model):
    with pytest.raises(ClientError) as info:
        sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant(InitialVariantWeight=0.0)])
    assert error(info)["Message"] == "The sum of InitialVariantWeight across production variants must be greater than 0."


def test_delete(sm, model):
    sm.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[variant()])
    sm.delete_endpoint_config(EndpointConfigName="c1")
    with pytest.raises(ClientError) as info:
        sm.delete_endpoint_config(EndpointConfigName="c1")
    assert error(info)["Message"] == (
        f'Could not find endpoint configuration "arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint-config/c1".')
