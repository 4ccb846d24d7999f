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


def test_compatibility_doc_names_every_operation():
    """docs/compatibility.md must mention every operation the installed botocore knows."""
    import re
    from pathlib import Path

    from sagemaker_emu.service_model import RUNTIME_SERVICE, service_model

    doc = Path(__file__).resolve().parents[2].joinpath("docs", "compatibility.md").read_text()
    named = set(re.findall(r"\b[A-Z][A-Za-z0-9]+\b", doc))
    for service in ("sagemaker", RUNTIME_SERVICE):
        missing = sorted(set(service_model(service).operation_names) - named)
        assert not missing, f"docs/compatibility.md does not mention {missing}"
