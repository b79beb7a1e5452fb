"""Helpers for the hardening tests: real server processes on free ports, and test images."""

import io
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

import cv2
import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    app_factory: str, env: dict[str, str], tmp_path: Path, port: int | None = None
) -> Iterator[Server]:
    """`app_factory` ("module:function") served by a real uvicorn process; stopped at the end."""
    port = port or free_port()
    log = tmp_path / f"uvicorn-{port}.log"
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
        "--no-access-log",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        _wait_until_up(server)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(server: Server, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.output()}")
        try:
            if httpx.get(server.url + "/openapi.json", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not come up in {timeout_s} s:\n{server.output()}")


def model_env(**knobs: object) -> dict[str, str]:
    return {f"MODEL_{name.upper()}": str(value) for name, value in knobs.items()}


# --- images -----------------------------------------------------------------------------------


def photo(width: int = 320, height: int = 240) -> np.ndarray:
    """A photo-like BGR array: a gradient with a rectangle."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.dstack(
        [(x * 255 // max(width - 1, 1)), (y * 255 // max(height - 1, 1)), np.full_like(x, 90)]
    ).astype(np.uint8)
    cv2.rectangle(image, (width // 4, height // 4), (width // 2, height // 2), (20, 20, 220), -1)
    return image


def encode(image: np.ndarray, ext: str = ".jpg", *params: int) -> bytes:
    ok, data = cv2.imencode(ext, image, list(params))
    assert ok
    return data.tobytes()


def unique_jpeg(seed: int, width: int = 160, height: int = 120) -> bytes:
    """A JPEG no other seed gives: the seed rides in a comment (COM) segment."""
    data = encode(photo(width, height), ".jpg")
    comment = f"test image {seed} {os.getpid()} {time.time_ns()}".encode()
    segment = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
    return data[:2] + segment + data[2:]


def pil_jpeg(mode: str, width: int = 64, height: int = 48, **save: object) -> bytes:
    rgb = Image.fromarray(cv2.cvtColor(photo(width, height), cv2.COLOR_BGR2RGB))
    buffer = io.BytesIO()
    rgb.convert(mode).save(buffer, "JPEG", **save)
    return buffer.getvalue()


def jpeg_with_exif_orientation(orientation: int, width: int = 64, height: int = 48) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    return pil_jpeg("RGB", width, height, exif=exif.tobytes())


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header (SOF0) claims width x height pixels."""
    data = bytearray(encode(photo(16, 16), ".jpg"))
    sof = data.find(b"\xff\xc0")
    assert sof != -1, "baseline JPEG expected"
    # FF C0, length (2), precision (1), height (2), width (2)
    data[sof + 5 : sof + 7] = height.to_bytes(2, "big")
    data[sof + 7 : sof + 9] = width.to_bytes(2, "big")
    return bytes(data)
