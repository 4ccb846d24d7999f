"""protocol/rpc.py's reading of CBOR input: any document botocore could send comes through as
JSON would have carried it; sharing (tags 28/29) and kinds no input has are refused, whatever
their shape, in time proportional to the document, never to what it would expand to."""

import datetime as dt

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagemaker_emu import errors
from sagemaker_emu.protocol.rpc import _from_cbor

SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text() | \
    st.binary()
DOCUMENTS = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner,
                                                                                                max_size=5),
                         max_leaves=40)


@settings(max_examples=200, derandomize=True)
@given(st.dictionaries(st.text(), DOCUMENTS, max_size=5), st.booleans())
def test_a_document_without_sharing_comes_through_unchanged(document, marked_shareable):
    encoded = cbor2.dumps(document, value_sharing=marked_shareable)  # tags 28 without any 29: nothing shared
    assert _from_cbor(cbor2.loads(encoded), set()) == document


@settings(max_examples=100, derandomize=True)
@given(st.integers(1, 200), st.integers(1, 3))
def test_any_sharing_is_refused_at_its_second_use(depth, fan_out):
    node: list = ["leaf"]
    for _ in range(depth):
        node = [node] * (fan_out + 1)  # each level uses the one below more than once
    decoded = cbor2.loads(cbor2.dumps({"Dimensions": node}, value_sharing=True))
    with pytest.raises(errors.Malformed, match="more than one place"):
        _from_cbor(decoded, set())


def test_timestamps_become_epoch_seconds():
    when = dt.datetime(2026, 12, 6, tzinfo=dt.timezone.utc)
    assert _from_cbor(cbor2.loads(cbor2.dumps({"T": when}, datetime_as_timestamp=True)), set()) == \
        {"T": when.timestamp()}
