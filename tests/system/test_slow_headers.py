"""Slow clients against a real uvicorn started as `make run` starts it: a connection that
sends nothing, or its headers a byte at a time, is answered 408 and closed after
HEADER_TIMEOUT_S (uvicorn alone would keep it open for as long as the client likes); one
that sends its headers in time is served, also on a kept-alive connection."""

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.processes import MODEL_APP, PIPELINE_APP, Server, model_env, uvicorn_server

pytestmark = pytest.mark.subprocess

TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    logs: Path = tmp_path_factory.mktemp("slow-headers")
    with uvicorn_server(MODEL_APP, model_env(), logs) as model:
        env = {
            "DATABASE_URL": database_url,
            "MODEL_SERVICE_URL": model.url,
            "HEADER_TIMEOUT_S": str(TIMEOUT_S),
        }
        with uvicorn_server(PIPELINE_APP, env, logs, probe="/healthz") as pipeline:
            yield pipeline


def _connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_silent_connection_is_closed_with_408(server: Server) -> None:
    with _connect(server) as sock:
        started = time.monotonic()
        answer = _read_all(sock)  # returns once the server closes
    waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"HEADER_TIMEOUT_S" in answer
    assert TIMEOUT_S * 0.9 <= waited < TIMEOUT_S + 5


def test_headers_sent_a_byte_at_a_time_are_cut_off(server: Server) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    with _connect(server) as sock:
        try:
            for byte in request:
                sock.sendall(bytes([byte]))
                time.sleep(0.05)  # 200+ bytes: 10 s, far past the limit
        except OSError:
            pass  # closed on us: what we want
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")


def _one_answer(sock: socket.socket) -> bytes:
    """One whole answer on a kept-alive connection (head and body may come apart)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))  # fmt: skip
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_prompt_requests_are_served_on_a_kept_alive_connection(server: Server) -> None:
    with _connect(server) as sock:
        for _ in range(3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _one_answer(sock).startswith(b"HTTP/1.1 200 ")
            time.sleep(TIMEOUT_S * 1.5)  # idle between requests: keep-alive's business
