"""protocol/query.py reads the query protocol's flat names into the input shape."""

import pytest

from sagemaker_emu import errors
from sagemaker_emu.protocol import query
from sagemaker_emu.service_model import service_model


def read(service: str, operation: str, flat: dict[str, str]) -> dict:
    return query.params_of(service_model(service).operation_model(operation).input_shape, flat)


def test_lists_maps_and_nested_structures():
    flat = {"Name": "t", "Attributes.entry.1.key": "DisplayName", "Attributes.entry.1.value": "d",
            "Attributes.entry.2.key": "Policy", "Attributes.entry.2.value": "{}",
            "Tags.member.1.Key": "a", "Tags.member.1.Value": "1", "Tags.member.2.Key": "b", "Tags.member.2.Value": "2"}
    assert read("sns", "CreateTopic", flat) == {"Name": "t", "Attributes": {"DisplayName": "d", "Policy": "{}"},
                                                "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}


def test_a_list_ends_at_its_first_gap_and_an_empty_one_travels_as_a_bare_name():
    flat = {"Namespace": "n", "MetricData.member.1.MetricName": "a", "MetricData.member.3.MetricName": "c"}
    assert read("cloudwatch", "PutMetricData", flat)["MetricData"] == [{"MetricName": "a"}]
    assert read("cloudwatch", "DeleteAlarms", {"AlarmNames": ""}) == {"AlarmNames": []}
    assert read("cloudwatch", "DeleteAlarms", {}) == {}


def test_a_value_of_the_wrong_type_names_its_parameter():
    with pytest.raises(errors.Malformed, match=r"Value 'x' for parameter MetricData.member.1.Value is not a valid double"):
        read("cloudwatch", "PutMetricData", {"Namespace": "n", "MetricData.member.1.MetricName": "m",
                                             "MetricData.member.1.Value": "x"})


def test_names_that_fit_no_member_are_ignored_whatever_their_shape():
    flat = {"Namespace": "n", "MetricData": "x", "MetricData.member.1.MetricName.deeper.still": "y",
            "Unknown.member.1": "z", "....": "w"}
    assert read("cloudwatch", "PutMetricData", flat) == {"Namespace": "n", "MetricData": [{}]}
