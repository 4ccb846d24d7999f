"""List calls: paging, filters and sorting, through boto3's paginators too."""

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.testing import ECHO_IMAGE as IMAGE, deploy


@pytest.fixture
def models(sm):
    names = ["alpha", "beta-1", "beta-2", "gamma", "delta"]
    for name in names:
        sm.create_model(ModelName=name, PrimaryContainer={"Image": IMAGE})
    return names


def test_default_order_is_newest_first(sm, models):
    listed = [m["ModelName"] for m in sm.list_models()["Models"]]
    assert listed == list(reversed(models))


def test_sort_by_name(sm, models):
    listed = [m["ModelName"] for m in sm.list_models(SortBy="Name", SortOrder="Ascending")["Models"]]
    assert listed == sorted(models)


def test_paging_with_next_token(sm, models):
    first = sm.list_models(MaxResults=2, SortBy="Name", SortOrder="Ascending")
    assert [m["ModelName"] for m in first["Models"]] == ["alpha", "beta-1"]
    second = sm.list_models(MaxResults=2, SortBy="Name", SortOrder="Ascending", NextToken=first["NextToken"])
    assert [m["ModelName"] for m in second["Models"]] == ["beta-2", "delta"]
    third = sm.list_models(MaxResults=2, SortBy="Name", SortOrder="Ascending", NextToken=second["NextToken"])
    assert [m["ModelName"] for m in third["Models"]] == ["gamma"]
    assert "NextToken" not in third


def test_paginator_walks_everything(sm, models):
    pages = sm.get_paginator("list_models").paginate(PaginationConfig={"PageSize": 2})
    assert sorted(m["ModelName"] for page in pages for m in page["Models"]) == sorted(models)


def test_name_contains(sm, models):
    assert sorted(m["ModelName"] for m in sm.list_models(NameContains="BETA")["Models"]) == ["beta-1", "beta-2"]


def test_creation_time_filters(sm, models):
    times = {m["ModelName"]: m["CreationTime"] for m in sm.list_models()["Models"]}
    cut = times["gamma"]
    after = {m["ModelName"] for m in sm.list_models(CreationTimeAfter=cut)["Models"]}
    before = {m["ModelName"] for m in sm.list_models(CreationTimeBefore=cut)["Models"]}
    assert after == {n for n, t in times.items() if t >= cut}
    assert before == {n for n, t in times.items() if t < cut}
    assert sm.list_models(CreationTimeAfter=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1))["Models"] == []


def test_bad_token_and_token_from_another_query(sm, models):
    with pytest.raises(ClientError) as info:
        sm.list_models(NextToken="garbage")
    assert info.value.response["Error"] == {"Code": "ValidationException",
                                            "Message": "The provided pagination token is not valid."}
    token = sm.list_models(MaxResults=1)["NextToken"]
    with pytest.raises(ClientError):
        sm.list_models(NextToken=token, NameContains="beta")


def test_list_endpoint_configs_and_endpoints(sm):
    deploy(sm, "ep-a")
    deploy(sm, "ep-b")
    configs = sm.list_endpoint_configs(SortBy="Name", SortOrder="Ascending")["EndpointConfigs"]
    assert [c["EndpointConfigName"] for c in configs] == ["ep-a-config", "ep-b-config"]
    assert set(configs[0]) == {"EndpointConfigName", "EndpointConfigArn", "CreationTime"}
    endpoints = sm.list_endpoints(StatusEquals="InService", SortBy="Name")["Endpoints"]
    assert [e["EndpointName"] for e in endpoints] == ["ep-b", "ep-a"]  # Descending by default
    assert set(endpoints[0]) == {"EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus"}
    assert sm.list_endpoints(StatusEquals="Failed")["Endpoints"] == []
    modified = endpoints[0]["LastModifiedTime"]
    assert [e["EndpointName"] for e in sm.list_endpoints(LastModifiedTimeAfter=modified)["Endpoints"]] == ["ep-b"]


def test_list_validation(sm_unvalidated):
    with pytest.raises(ClientError) as info:
        sm_unvalidated.list_endpoints(SortBy="Bogus", MaxResults=1000)
    message = info.value.response["Error"]["Message"]
    assert message.startswith("2 validation errors detected: ")
    assert "Value 'Bogus' at 'sortBy' failed to satisfy constraint: Member must satisfy enum value set: [Name, CreationTime, Status]" in message
    assert "Value '1000' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100" in message
