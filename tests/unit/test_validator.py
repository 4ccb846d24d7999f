"""The schema-to-error translation: SageMaker's words, paths and counts."""

import pytest

from sagemaker_emu.errors import InvalidInput, Malformed
from sagemaker_emu.schemas.validator import strip_nulls, validate_input

NAME_PATTERN = "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"


def variant(**extra):
    v = {"VariantName": "v1", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    v.update(extra)
    return v


def message(operation, params):
    with pytest.raises(InvalidInput) as info:
        validate_input(operation, params)
    return info.value.message


def test_valid_input_passes():
    validate_input("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [variant()]})


def test_pattern_error_names_value_path_and_pattern():
    assert message("CreateEndpoint", {"EndpointName": "bad_name!", "EndpointConfigName": "c"}) == (
        "1 validation error detected: Value 'bad_name!' at 'endpointName' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {NAME_PATTERN}"
    )


def test_nested_list_paths_are_one_based_members():
    text = message(
        "CreateEndpointConfig",
        {
            "EndpointConfigName": "c",
            "ProductionVariants": [variant(), variant(VariantName="v2", RoutingConfig={"RoutingStrategy": "ROUND_ROBIN"})],
        },
    )
    assert text == (
        "1 validation error detected: Value 'ROUND_ROBIN' at "
        "'productionVariants.2.member.routingConfig.routingStrategy' failed to satisfy constraint: "
        "Member must satisfy enum value set: [LEAST_OUTSTANDING_REQUESTS, RANDOM, PREFIX_AWARE, KV_AWARE]"
    )


def test_errors_are_counted_and_joined():
    # A 64-character name breaks both the length and the pattern ({0,62} after the first).
    text = message("CreateEndpoint", {"EndpointName": "x" * 64, "EndpointConfigName": "-bad"})
    assert text.startswith("3 validation errors detected: ")
    clauses = text[len("3 validation errors detected: "):].split("; ")
    assert clauses == [
        f"Value '{'x' * 64}' at 'endpointName' failed to satisfy constraint: Member must have length less than or equal to 63",
        f"Value '{'x' * 64}' at 'endpointName' failed to satisfy constraint: Member must satisfy regular expression pattern: {NAME_PATTERN}",
        f"Value '-bad' at 'endpointConfigName' failed to satisfy constraint: Member must satisfy regular expression pattern: {NAME_PATTERN}",
    ]


def test_missing_required_member_is_value_null():
    text = message("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [{"ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}]})
    assert text == (
        "1 validation error detected: Value null at 'productionVariants.1.member.variantName' "
        "failed to satisfy constraint: Member must not be null"
    )


def test_numeric_bounds():
    text = message("ListEndpoints", {"MaxResults": 101})
    assert text == ("1 validation error detected: Value '101' at 'maxResults' failed to satisfy constraint: "
                    "Member must have value less than or equal to 100")
    text = message("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [variant(InitialVariantWeight=-1.5)]})
    assert "Value '-1.5' at 'productionVariants.1.member.initialVariantWeight'" in text
    assert text.endswith("Member must have value greater than or equal to 0")


def test_list_length():
    text = message("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": []})
    assert text == ("1 validation error detected: Value '[]' at 'productionVariants' failed to satisfy constraint: "
                    "Member must have length greater than or equal to 1")


def test_map_keys_and_values_are_reported_on_the_map():
    text = message("CreateModel", {"ModelName": "m", "PrimaryContainer": {"Environment": {"1BAD": "x"}}})
    assert text == (
        "1 validation error detected: Value '{1BAD=x}' at 'primaryContainer.environment' failed to satisfy "
        "constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: "
        "[a-zA-Z_][a-zA-Z0-9_]*]"
    )
    text = message("CreateModel", {"ModelName": "m", "PrimaryContainer": {"Environment": {"OK": "v" * 1025}}})
    assert "at 'primaryContainer.environment' failed to satisfy constraint: Map value must satisfy constraint: " \
           "[Member must have length less than or equal to 1024]" in text


def test_prefix_aware_requires_its_config_and_both_members():
    text = message("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [
        variant(RoutingConfig={"RoutingStrategy": "PREFIX_AWARE"})]})
    assert text == ("1 validation error detected: Value null at "
                    "'productionVariants.1.member.routingConfig.prefixAwareRoutingConfig' "
                    "failed to satisfy constraint: Member must not be null")
    text = message("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [
        variant(RoutingConfig={"RoutingStrategy": "PREFIX_AWARE", "PrefixAwareRoutingConfig": {"PrefixLength": 100}})]})
    assert text.startswith("2 validation errors detected: ")
    assert "'productionVariants.1.member.routingConfig.prefixAwareRoutingConfig.prefixLength' failed to satisfy " \
           "constraint: Member must have value greater than or equal to 1024" in text
    assert "Value null at 'productionVariants.1.member.routingConfig.prefixAwareRoutingConfig.concurrencyThreshold'" in text


def test_prefix_aware_config_is_forbidden_with_other_strategies():
    text = message("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [
        variant(RoutingConfig={"RoutingStrategy": "RANDOM",
                               "PrefixAwareRoutingConfig": {"PrefixLength": 2048, "ConcurrencyThreshold": 4}})]})
    assert text == "PrefixAwareRoutingConfig can be specified only when RoutingStrategy is PREFIX_AWARE."


def test_instance_variant_needs_type_and_count_serverless_forbids_them():
    text = message("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [
        {"VariantName": "v", "ModelName": "m"}]})
    assert "Value null at 'productionVariants.1.member.instanceType'" in text
    assert "Value null at 'productionVariants.1.member.initialInstanceCount'" in text
    text = message("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [
        variant(ServerlessConfig={"MemorySizeInMB": 2048, "MaxConcurrency": 5})]})
    assert text.startswith("A production variant with ServerlessConfig cannot also specify")
    validate_input("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [
        {"VariantName": "v", "ModelName": "m", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}]})


def test_instance_pools_take_the_place_of_instance_type_not_beside_it():
    pools = [{"InstanceType": "ml.g5.xlarge", "Priority": 1}, {"InstanceType": "ml.g6.xlarge", "Priority": 2}]
    variant = {"VariantName": "v", "ModelName": "m", "InitialInstanceCount": 1, "InstancePools": pools}
    validate_input("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [variant]})
    both = {**variant, "InstanceType": "ml.g5.xlarge"}
    assert message("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [both]}) == \
        "A production variant specifies either InstanceType or InstancePools, not both."
    no_count = {k: v for k, v in variant.items() if k != "InitialInstanceCount"}
    assert "member.initialInstanceCount" in message("CreateEndpointConfig", {"EndpointConfigName": "c",
                                                                      "ProductionVariants": [no_count]})
    too_many = {**variant, "InstancePools": [{"InstanceType": f"ml.g5.{s}", "Priority": 1} for s in
                                             ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")]}
    assert "length less than or equal to 5" in message("CreateEndpointConfig", {"EndpointConfigName": "c",
                                                                               "ProductionVariants": [too_many]})


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"EndpointName": 5}, "NUMBER_VALUE can not be converted to a String"),
        ({"EndpointName": {"a": 1}}, "Start of structure or map found where not expected."),
        ({"EndpointName": ["a"]}, "Start of list found where not expected."),
        ({"EndpointName": True}, "TRUE_VALUE can not be converted to a String"),
    ],
)
def test_wrong_types_are_serialization_errors(params, expected):
    with pytest.raises(Malformed) as info:
        validate_input("DescribeEndpoint", params)
    assert info.value.message == expected


def test_integer_members_reject_strings_fractions_and_java_overflow():
    for value, expected in [("1", "STRING_VALUE can not be converted to an Integer"),
                            (1.5, "NUMBER_VALUE can not be converted to an Integer"),
                            (2**31, "Numeric value (2147483648) out of range of int")]:
        with pytest.raises(Malformed) as info:
            validate_input("ListEndpoints", {"MaxResults": value})
        assert info.value.message == expected


def test_huge_values_are_cut_in_messages():
    text = message("DescribeEndpoint", {"EndpointName": "a" * 100_000})
    assert text.startswith("2 validation errors detected: ")  # length and pattern
    assert len(text) < 2 * (1024 + 200)
    assert "'" + "a" * 1024 + "...'" in text


def test_nulls_are_absent_members():
    assert strip_nulls({"A": None, "B": [{"C": None, "D": 1}]}) == {"B": [{"D": 1}]}
