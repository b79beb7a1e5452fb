"""Real server processes for tests: uvicorn on a free port, its output in a log file, stopped
with SIGTERM (killed if it hangs) at the end."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
MODEL_APP = "model_service.app:create_app"
PIPELINE_APP = "pipeline_service.app:create_app"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def model_env(**knobs: object) -> dict[str, str]:
    """MODEL_* settings of the model service: model_env(latency_ms=300)."""
    return {f"MODEL_{name.upper()}": str(value) for name, value in knobs.items()}


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout_s: float = 60) -> int:
        return self.process.wait(timeout=timeout_s)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def uvicorn_server(
    app_factory: str,
    env: dict[str, str],
    log_dir: Path,
    port: int | None = None,
    workers: int = 1,
    probe: str = "/openapi.json",
) -> Iterator[Server]:
    """`app_factory` ("module:function") served by a real uvicorn process, up once `probe`
    answers. Its output is appended to `log_dir/uvicorn-<port>.log`, so a server restarted
    on the same port keeps one log."""
    port = port or free_port()
    log = log_dir / f"uvicorn-{port}.log"
    # Each server chooses its own metrics directory (or none): never the test runner's.
    environment = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        app_factory,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
    ]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**environment, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        _wait_until_up(server, probe)
        yield server
    finally:
        if process.poll() is None:
            server.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(server: Server, probe: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.output()}")
        try:
            if httpx.get(server.url + probe, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not come up in {timeout_s} s:\n{server.output()}")
