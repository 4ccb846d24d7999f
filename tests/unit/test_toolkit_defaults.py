import pytest

from sagemaker_emu.worker.toolkit import ToolkitError, default_input_fn, default_output_fn


def test_default_input_decoding():
    assert default_input_fn(b'{"a": 1}', "application/json") == {"a": 1}
    assert default_input_fn(b"1,2", "text/csv; charset=utf-8") == "1,2"
    assert default_input_fn(b"\x00\x01", "application/x-npy") == b"\x00\x01"
    with pytest.raises(ToolkitError) as info:
        default_input_fn(b"{", "application/json")
    assert info.value.status == 400


def test_default_output_encoding():
    assert default_output_fn({"a": [1]}, "application/json") == ('{"a": [1]}', "application/json")
    assert default_output_fn([[1, 2], [3, 4]], "text/csv") == ("1,2\n3,4", "text/csv")
    with pytest.raises(ToolkitError) as info:
        default_output_fn({"a": 1}, "image/png")
    assert info.value.status == 415


def test_default_output_passes_a_generator_through_as_a_stream():
    def tokens():
        yield "a"
        yield "b"

    body, ctype = default_output_fn(tokens(), "text/plain")
    assert list(body) == ["a", "b"] and ctype == "text/plain"
