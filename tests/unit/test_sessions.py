import pytest

from sagemaker_emu.errors import InvalidInput
from sagemaker_emu.runtime.sessions import Session, SessionTable, parse_new_session


def test_parse_new_session_header():
    assert parse_new_session("abc123; Expires=2030-01-02T03:04:05Z") == ("abc123", 1893553445.0)
    assert parse_new_session("abc123") is None
    assert parse_new_session("abc; Expires=tomorrow") is None


def test_sessions_expire_and_close():
    table = SessionTable()
    table.opened(("arn", 1), "s1", Session("v", "v-1", expires=100.0))
    assert table.find(("arn", 1), "ep", "s1", now=99.0).instance_id == "v-1"
    with pytest.raises(InvalidInput):
        table.find(("arn", 2), "ep", "s1", now=99.0)  # another incarnation of the endpoint
    with pytest.raises(InvalidInput):
        table.find(("arn", 1), "ep", "s1", now=100.0)
    table.opened(("arn", 1), "s2", Session("v", "v-1", expires=100.0))
    table.closed(("arn", 1), "s2")
    with pytest.raises(InvalidInput):
        table.find(("arn", 1), "ep", "s2", now=0.0)
