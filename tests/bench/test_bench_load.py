"""The bench's load generator stops cleanly: every request a server saw was answered and
counted by wrk, which is what lets `make bench` compare stored runs with 200 answers exactly.
(Only the mechanism is tested here; speed is never asserted.)"""

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.wrk import run_wrk
from tests.fixtures.images import jpeg_bytes

pytestmark = [
    pytest.mark.subprocess,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed"),
]


class CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.received = 0
        self.bodies: set[int] = set()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects
    server: CountingServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.received += 1
            self.server.bodies.add(len(body))
        # Every 7th request is refused, to see failures counted apart from the 200s.
        status = 415 if self.server.received % 7 == 0 else 200
        answer = b'{"ok": true}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[CountingServer]:
    server = CountingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_a_timed_run_leaves_nothing_in_flight(server: CountingServer, tmp_path: Path) -> None:
    image = tmp_path / "photo.jpg"
    image.write_bytes(jpeg_bytes(64, 48))
    result = run_wrk(f"http://127.0.0.1:{server.server_port}", image, concurrency=4, seconds=1)
    assert result.ok + result.failed == server.received > 0
    assert result.failed == server.received // 7
    assert result.statuses == (f"415:{result.failed}" if result.failed else "")
    assert result.socket_errors == 0
    assert result.seconds > 0.9
    assert result.p50_ms <= result.p99_ms <= result.max_ms
    assert len(server.bodies) == 1 and server.bodies.pop() > image.stat().st_size  # multipart


def test_a_counted_run_sends_the_requests_asked(server: CountingServer, tmp_path: Path) -> None:
    image = tmp_path / "photo.jpg"
    image.write_bytes(jpeg_bytes(64, 48))
    result = run_wrk(
        f"http://127.0.0.1:{server.server_port}", image, concurrency=3, seconds=60, requests=30
    )
    assert result.ok + result.failed == server.received == 30
