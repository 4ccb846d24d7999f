"""The fleet's view of an instance's KV cache (KvIndex, kept by KvSync): events fetched at most
every interval, served prompts added in between. The container is a neighbour here: a small
HTTP server answering `/kv-events` from a real BlockCache."""

import http.server
import json
import threading
import urllib.parse

import pytest

from sagemaker_emu.fleet import kv_sync
from sagemaker_emu.fleet.kv_sync import KvSync
from sagemaker_emu.kv import blocks as kvblocks
from sagemaker_emu.kv.cache import BlockCache
from sagemaker_emu.kv.index import KvIndex


class _Container(http.server.ThreadingHTTPServer):
    def __init__(self, cache: "BlockCache | None") -> None:
        self.cache = cache  # None: a container without /kv-events
        self.fetches = 0
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.fetches += 1
        url = urllib.parse.urlparse(self.path)
        if self.server.cache is None or url.path != "/kv-events":
            body, status = b"{}", 404
        else:
            after = int(urllib.parse.parse_qs(url.query).get("after", ["0"])[0])
            body, status = json.dumps(self.server.cache.events_after(after)).encode(), 200
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def container():
    made = []

    def make(cache):
        server = _Container(cache)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        made.append(server)
        return server

    yield make
    for server in made:
        server.shutdown()
        server.server_close()


def prompt(word: str, blocks: int) -> list[str]:
    return kvblocks.block_hashes([f"{word}{i}" for i in range(16 * blocks)])


def test_between_fetches_a_served_prompt_is_added_without_asking(container, monkeypatch):
    cache = BlockCache(capacity=100)
    server = container(cache)
    state = KvSync(KvIndex())
    a, b = prompt("a", 3), prompt("b", 2)
    cache.store(a)
    state.served(a, "127.0.0.1", server.server_port)  # the first call always fetches
    assert server.fetches == 1 and state.index.supported and state.index.blocks == set(a)

    monkeypatch.setattr(kv_sync, "SYNC_INTERVAL_S", 3600.0)
    cache.store(b)
    state.served(b, "127.0.0.1", server.server_port)
    assert server.fetches == 1  # not due: no request to the container
    assert state.index.blocks == set(a) | set(b)


def test_evictions_arrive_with_the_next_due_fetch(container, monkeypatch):
    cache = BlockCache(capacity=4)
    server = container(cache)
    state = KvSync(KvIndex())
    a, b = prompt("a", 3), prompt("b", 3)
    cache.store(a)
    state.served(a, "127.0.0.1", server.server_port)
    monkeypatch.setattr(kv_sync, "SYNC_INTERVAL_S", 3600.0)
    cache.store(b)  # evicts two of a's blocks
    state.served(b, "127.0.0.1", server.server_port)
    assert set(a) <= state.index.blocks  # not known yet

    monkeypatch.setattr(kv_sync, "SYNC_INTERVAL_S", 0.0)
    state.served(b, "127.0.0.1", server.server_port)
    assert server.fetches == 2
    assert state.index.blocks == set(a[2:]) | set(b)
    assert (state.index.occupancy, state.index.capacity) == (4, 4)


def test_a_container_without_kv_events_is_asked_once_and_holds_nothing(container, monkeypatch):
    server = container(None)
    state = KvSync(KvIndex())
    monkeypatch.setattr(kv_sync, "SYNC_INTERVAL_S", 0.0)
    for _ in range(3):
        state.served(prompt("a", 2), "127.0.0.1", server.server_port)
    assert state.index.supported is False and server.fetches == 1
    assert state.index.blocks == set()
