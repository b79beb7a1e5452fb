"""`python -m pipeline_service.db.migrate` waits for a PostgreSQL that is still starting, for a
bounded time, and says why it gives up."""

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest
from sqlalchemy.engine import make_url

from tests.fixtures.processes import ROOT, free_port

pytestmark = pytest.mark.subprocess


def migrate(database_url: str, wait_s: float) -> subprocess.Popen[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "MIGRATE_CONNECT_WAIT_S": str(wait_s)}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline_service.db.migrate"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_gives_up_after_the_bound_with_a_clear_message() -> None:
    port = free_port()  # nothing listens there
    started = time.monotonic()
    process = migrate(f"postgresql://postgres:s3cret@127.0.0.1:{port}/pipelines", wait_s=2)
    out, err = process.communicate(timeout=120)
    elapsed = time.monotonic() - started

    assert process.returncode == 1, (out, err)
    assert elapsed >= 2
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        f"migrate: error: PostgreSQL at 127.0.0.1:{port} (database pipelines, user postgres) "
        "did not accept a connection within 2 s (last error: ConnectionRefusedError"
    ), err
    assert "MIGRATE_CONNECT_WAIT_S" in last
    assert "does not accept connections yet" in err  # said while waiting
    assert "Traceback" not in err
    assert "s3cret" not in out + err


@contextmanager
def forwarder(port: int, upstream_url: str) -> Iterator[None]:
    """A TCP port that forwards to the PostgreSQL at `upstream_url` (TCP or unix socket)."""
    upstream = make_url(upstream_url)
    socket_dir = upstream.query.get("host")
    loop = asyncio.new_event_loop()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if isinstance(socket_dir, str) and socket_dir.startswith("/"):
            path = f"{socket_dir}/.s.PGSQL.{upstream.port or 5432}"
            up_reader, up_writer = await asyncio.open_unix_connection(path)
        else:
            up_reader, up_writer = await asyncio.open_connection(upstream.host, upstream.port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = loop.run_until_complete(asyncio.start_server(serve, "127.0.0.1", port))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


def test_waits_for_a_server_that_starts_listening_later(database_url: str) -> None:
    """migrate starts while nothing listens; PostgreSQL appears after its first refusals."""
    port = free_port()
    via_port = make_url(database_url).set(host="127.0.0.1", port=port, query={})
    process = migrate(via_port.render_as_string(hide_password=False), wait_s=120)
    assert process.stderr is not None
    first = process.stderr.readline()  # said after the first refused attempt
    assert "does not accept connections yet (ConnectionRefusedError" in first, first
    with forwarder(port, database_url):
        out, err = process.communicate(timeout=120)
    assert process.returncode == 0, (out, err)
    assert out.strip().splitlines()[-1] == "database is up to date and seeded"


def test_a_port_that_is_not_postgresql_is_not_waited_for_as_if_starting() -> None:
    """A listener that closes at once (not PostgreSQL) still counts as "not yet", and the
    bound holds: no hang on a half-open connection."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        stop = threading.Event()

        def accept_and_close() -> None:
            listener.settimeout(0.2)
            while not stop.is_set():
                with suppress(TimeoutError, OSError):
                    connection, _ = listener.accept()
                    connection.close()

        thread = threading.Thread(target=accept_and_close, daemon=True)
        thread.start()
        try:
            process = migrate(f"postgresql://postgres@127.0.0.1:{port}/pipelines", wait_s=2)
            out, err = process.communicate(timeout=120)
        finally:
            stop.set()
            thread.join(timeout=10)
    assert process.returncode == 1, (out, err)
    assert "did not accept a connection within 2 s" in err
