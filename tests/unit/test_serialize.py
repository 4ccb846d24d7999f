import datetime as dt

from sagemaker_emu.protocol.serialize import to_wire
from sagemaker_emu.service_model import control_model


def test_output_shape_drives_floats_timestamps_and_members():
    shape = control_model().operation_model("DescribeEndpoint").output_shape
    wire = to_wire(shape, {
        "EndpointName": "e", "EndpointArn": "arn", "EndpointStatus": "InService",
        "CreationTime": 1700000000.12345, "LastModifiedTime": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        "ProductionVariants": [{"VariantName": "v", "CurrentWeight": 1, "DesiredWeight": 2, "CurrentInstanceCount": 3}],
        "NotAMember": "dropped", "FailureReason": None,
    })
    assert wire == {
        "EndpointName": "e", "EndpointArn": "arn", "EndpointStatus": "InService",
        "CreationTime": 1700000000.123, "LastModifiedTime": 1704067200.0,
        "ProductionVariants": [{"VariantName": "v", "CurrentWeight": 1.0, "DesiredWeight": 2.0, "CurrentInstanceCount": 3}],
    }
    assert isinstance(wire["ProductionVariants"][0]["CurrentWeight"], float)
