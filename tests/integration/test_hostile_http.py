"""The HTTP layer under hostile or careless callers (issue 11, items 1, 3, 4, 9, 10).

Each test talks raw HTTP over a socket to a real server with its real workers. Short
read/write timeouts keep the timeout tests quick; nothing here sleeps to synchronise: a
test waits on a socket for the server to act.
"""

from __future__ import annotations

import json
import resource
import socket
import threading

import pytest

from sagemaker_emu.testing import EmulatorProcess, client, deploy

INVOKE = b"POST /endpoints/echo/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@pytest.fixture(scope="module")
def hostile():
    srv = EmulatorProcess("--read-timeout", "1", "--write-timeout", "1", "--idle-timeout", "3")
    deploy(client(srv.url), "echo")
    yield srv
    srv.stop()


def _addr(srv) -> tuple[str, int]:
    host, port = srv.url.split("//", 1)[1].rsplit(":", 1)
    return host, int(port)


def _exchange(srv, raw: bytes, half_close: bool = True) -> bytes:
    """Send raw bytes, optionally half-close, and read until the server closes."""
    with socket.create_connection(_addr(srv), timeout=10) as s:
        s.sendall(raw)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def _answer(srv, raw: bytes) -> bytes:
    """Send raw bytes and read one answer (head and Content-Length body), or b"" if closed."""
    with socket.create_connection(_addr(srv), timeout=10) as s:
        s.sendall(raw)
        f = s.makefile("rb")
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = f.readline()
            if not line:
                return head
            head += line
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length")), 0)
        return head + f.read(length)


def _status(answer: bytes) -> int:
    """The final answer's status (interim 1xx answers skipped), or 0 if there is none."""
    while answer.startswith(b"HTTP/1.1 1"):
        answer = answer.partition(b"\r\n\r\n")[2]
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else 0


def _served(srv) -> int:
    return sum(i["served"] for v in srv.endpoint_view("echo")["variants"] for i in v["instances"])


def test_a_caller_that_half_closes_gets_its_answer(hostile):
    """Issue 25 item 7: a caller that sends its whole request and then half-closes waits for the
    answer; before, the end of stream was taken for a hang-up (150 of 150 invokes unanswered).
    The instance is slowed so that the half-close arrives while the call runs."""
    rule = json.dumps({"kind": "slow_instance", "endpoint": "echo", "latency_ms": 1000, "times": 1}).encode()
    assert hostile.post("/_emu/faults", rule, {"Content-Type": "application/json"})[0] == 201
    answer = _exchange(hostile, INVOKE + b"Content-Length: 2\r\n\r\n{}")  # read until the server closes
    assert _status(answer) == 200 and answer.endswith(b"\r\n\r\n{}")


def test_a_control_call_half_closed_gets_its_answer(hostile):
    raw = (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: SageMaker.ListEndpoints\r\n"
           b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\n\r\n{}")
    answer = _exchange(hostile, raw)
    assert _status(answer) == 200 and b'"Endpoints"' in answer


def _still_serves(srv) -> None:
    rt = client(srv.url, "sagemaker-runtime")
    assert rt.invoke_endpoint(EndpointName="echo", Body=b"{}")["Body"].read() == b"{}"
    assert srv.proc.poll() is None


def test_a_chunk_declared_larger_than_sent_does_not_crash_the_server(hostile):
    # Before: the development server's de-chunking stream made CPython copy out of bounds (SIGSEGV).
    answer = _exchange(hostile, INVOKE + b"Transfer-Encoding: chunked\r\n\r\n2000000\r\n" + b"x" * 1000)
    assert _status(answer) in (0, 400, 413)  # a half-close counts as the caller leaving: maybe no answer
    _still_serves(hostile)


@pytest.mark.parametrize("framing", [
    b"Content-Length: abc\r\n\r\n{}", b"Content-Length: 0x4\r\n\r\n{}{}", b"Content-Length: 4.0\r\n\r\n{}{}",
    b"Content-Length: 4, 4\r\n\r\n{}{}", b"Content-Length: -1\r\n\r\n{}",
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", b"Transfer-Encoding: chunked\r\n\r\n-4\r\n{}\r\n0\r\n\r\n",
    b"Transfer-Encoding: chunked\r\n\r\n2;ext=1\r\n{}\r\n0\r\n\r\n",
    b"X-Big: " + b"a" * (6 * 1024 * 1024) + b"\r\n\r\n",
])
def test_malformed_framing_gets_an_aws_shaped_4xx_and_nothing_else_breaks(hostile, framing):
    answer = _answer(hostile, INVOKE + framing)
    status = _status(answer)
    if status != 200:  # a chunk extension is legal HTTP/1.1 and may be served
        assert 400 <= status < 500, answer[:300]
        body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert body["__type"] and body["message"]
    _still_serves(hostile)


def test_a_request_cut_off_inside_its_head_is_never_invoked(hostile):
    before = _served(hostile)
    for _ in range(20):
        _exchange(hostile, INVOKE + b"Content-Length: 2\r\nX-Cut: of")  # EOF before the blank line
    _still_serves(hostile)
    assert _served(hostile) == before + 1  # only the call made by _still_serves


def test_a_chunked_body_without_its_last_chunk_is_closed_unanswered_and_never_invoked(hostile):
    before = _served(hostile)
    assert _answer(hostile, INVOKE + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n") == b""  # read timeout
    _still_serves(hostile)
    assert _served(hostile) == before + 1


def test_a_router_call_whose_body_stops_arriving_is_answered_408_request_timeout(hostile):
    """The router runtime documents RequestTimeoutException (408) for a request that did not
    arrive in time (after --read-timeout here, 1 s); InvokeEndpoint's connection just closes."""
    router = (b"POST /inference-routers/r/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"X-Amzn-SageMaker-Routing-Target-Name: t\r\nContent-Length: 100\r\n\r\n{\"x\":")
    answer = _answer(hostile, router)
    assert _status(answer) == 408 and b"x-amzn-ErrorType: RequestTimeoutException" in answer
    assert b"didn't receive the complete request in time" in answer
    _still_serves(hostile)


def test_connections_are_kept_alive(hostile):
    with socket.create_connection(_addr(hostile), timeout=10) as s:
        f = s.makefile("rb")
        for _ in range(3):
            s.sendall(INVOKE + b"Content-Length: 2\r\n\r\n{}")
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                head += f.readline()
            assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower()
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            assert f.read(length) == b"{}"


def test_a_request_that_never_finishes_arriving_is_closed(hostile):
    # slowloris: the head never ends; the read timeout (1 s here) closes the socket.
    with socket.create_connection(_addr(hostile), timeout=20) as s:
        s.sendall(INVOKE + b"X-Slow: a")
        assert s.recv(1024) == b""  # closed by the server, not by our 20 s timeout


def test_more_than_1024_open_sockets_do_not_break_invocations(hostile):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1300:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    idle = [socket.create_connection(_addr(hostile)) for _ in range(1100)]
    try:
        # Before: the server's descriptors passed 1,023 and select() raised on every invoke.
        for _ in range(5):
            _still_serves(hostile)
    finally:
        for s in idle:
            s.close()


def test_streams_nobody_reads_do_not_hold_the_instances(tmp_path):
    # The model timeout only bounds how long the check waits: held slots never come back on
    # their own (the streams are endless), so 20 s fails as surely as 5 s and rides out a busy CI.
    srv = EmulatorProcess("--write-timeout", "1", "--model-timeout", "20")
    try:
        sm = client(srv.url)
        # Tokens as fast as llm-sim makes them, far more than socket buffers hold: an unread
        # stream must fill every buffer on its way and then be cut off by the write timeout.
        sm.create_model(ModelName="llm", PrimaryContainer={"Image": "sagemaker-emu/llm-sim", "Environment": {
            "LLM_SIM_PREFILL_BASE_MS": "0", "LLM_SIM_PREFILL_MS_PER_TOKEN": "0",
            "LLM_SIM_DECODE_MS_PER_TOKEN": "0", "LLM_SIM_MAX_BATCH": "2", "LLM_SIM_MAX_OUTPUT_TOKENS": "400000"}})
        sm.create_endpoint_config(EndpointConfigName="llm", ProductionVariants=[{
            "VariantName": "v", "ModelName": "llm", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName="llm", EndpointConfigName="llm")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="llm", WaiterConfig={"Delay": 1})
        body = json.dumps({"inputs": "x " * 50, "parameters": {"max_new_tokens": 400000}, "stream": True}).encode()
        head = (b"POST /endpoints/llm/invocations-response-stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        unread = []
        for _ in range(2):  # as many as the model's batch slots; nobody reads their answers
            s = socket.create_connection(_addr(srv))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(head + body)
            unread.append(s)
        rt = client(srv.url, "sagemaker-runtime")
        # Before: this waited for a slot until the model timeout and failed with a ModelError.
        answer = rt.invoke_endpoint(EndpointName="llm", Body=json.dumps(
            {"inputs": "hi", "parameters": {"max_new_tokens": 3}}))["Body"].read()
        assert json.loads(answer)
        for s in unread:
            s.close()
    finally:
        srv.stop()


def test_many_callers_at_once_all_get_answers(hostile):
    errors = []

    def call():
        try:
            _still_serves(hostile)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_request_with_both_lengths_is_read_by_its_chunks_and_its_connection_closes(hostile):
    """Issue 25 item 7: Transfer-Encoding with Content-Length kept the connection open, and the
    bytes after the chunked body ran as a second request (request smuggling; RFC 9112 6.1)."""
    before = _served(hostile)
    smuggled = INVOKE + b"Content-Length: 10\r\n\r\n{}"
    raw = INVOKE + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n2\r\n{}\r\n0\r\n\r\n" + smuggled
    with socket.create_connection(_addr(hostile), timeout=10) as s:
        s.sendall(raw)
        answers = b""
        while True:  # no half-close: the server must end the connection itself
            data = s.recv(65536)
            if not data:
                break
            answers += data
    assert answers.count(b"HTTP/1.1 ") == 1 and _status(answers) == 200, answers[:300]
    assert b"Connection: close" in answers.split(b"\r\n\r\n", 1)[0]
    assert answers.endswith(b"{}")
    _still_serves(hostile)
    assert _served(hostile) == before + 2  # the chunked call and _still_serves's: nothing smuggled


def test_an_unsupported_transfer_encoding_is_501_not_implemented(hostile):
    answer = _answer(hostile, INVOKE + b"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    assert _status(answer) == 501
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["__type"] == "NotImplemented"  # before: InternalFailure
    _still_serves(hostile)
