"""The compute floor: the car pipeline's unavoidable CPU work on one image, one thread.

decode -> resize 640x640 -> normalize -> bytes -> base64, in a tight loop on the same image.
Requests/s for the machine = cores x 1000 / ms per image: what the service could reach if it
did nothing but this work on every core.

Two of them, each on a worker thread of a new process:

- the *literal* floor: the pipeline as first specified (np.frombuffer + cv2.imdecode), with
  glibc's default malloc settings (every large buffer is a fresh mmap that the kernel faults
  in page by page);
- the *fault-free* floor: the same compute as the service does it, in a process configured
  like it: the service's own decode (a JPEG by libjpeg-turbo in strict mode, after its header
  checks; docs/decisions/0019-strict-jpeg-decoding.md) and the services' allocator settings
  (devstack/allocator.py), where the large buffers are reused.

Each reports its CPU time and minor page faults per image too.

    python bench/floor.py ../shared/images/parking_1920x1080.jpg [--seconds 3]
    python -m bench.floor IMAGE --json    # one JSON line (what the fault-free floor runs)
"""

import argparse
import base64
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__" and str(ROOT) not in sys.path:  # run as a script: bench/floor.py
    sys.path.insert(0, str(ROOT))

from devstack.allocator import ALLOCATOR_ENV, with_allocator_env  # noqa: E402
from pipeline_service.pipeline import formats  # noqa: E402
from pipeline_service.pipeline.formats.header import DecodeLimits  # noqa: E402


@dataclass(frozen=True)
class Floor:
    ms_per_image: float  # median over the batches
    cores: int
    faults_per_image: float = 0.0  # minor page faults of the measuring process, per image
    cpu_ms_per_image: float = 0.0  # CPU time of the measuring thread (wall time is ms_per_image)

    @property
    def requests_per_s(self) -> float:
        return self.cores * 1000 / self.ms_per_image

    @staticmethod
    def mean(*floors: "Floor") -> "Floor":
        return Floor(
            statistics.fmean(f.ms_per_image for f in floors),
            floors[0].cores,
            statistics.fmean(f.faults_per_image for f in floors),
            statistics.fmean(f.cpu_ms_per_image for f in floors),
        )


def opencv_decode(data: bytes, flag: int = cv2.IMREAD_COLOR) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    if image is None:
        raise ValueError("cv2.imdecode could not decode the floor's image")
    return image


# cv2.imdecode's flags as the decode step's (grayscale, scale)
FLAG_MODES = {
    cv2.IMREAD_COLOR: (False, 1),
    cv2.IMREAD_GRAYSCALE: (True, 1),
    **{getattr(cv2, f"IMREAD_REDUCED_COLOR_{s}"): (False, s) for s in (2, 4, 8)},
    **{getattr(cv2, f"IMREAD_REDUCED_GRAYSCALE_{s}"): (True, s) for s in (2, 4, 8)},
}


def service_decode(data: bytes, flag: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """What the decode step does (its header read and checked first)."""
    grayscale, scale = FLAG_MODES[flag]
    header = formats.read_checked_header(data, DecodeLimits())
    return formats.decode(header, data, grayscale, scale)


DECODERS = {"opencv": opencv_decode, "service": service_decode}


def car_pipeline_work(data: bytes, flag: int = cv2.IMREAD_COLOR, decoder: str = "opencv") -> str:
    image = DECODERS[decoder](data, flag)
    image = cv2.resize(image, (640, 640), interpolation=cv2.INTER_LINEAR)
    image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)  # type: ignore[call-overload]
    return base64.b64encode(image.tobytes()).decode("ascii")


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def measure(
    data: bytes, seconds: float = 3.0, flag: int = cv2.IMREAD_COLOR, decoder: str = "opencv"
) -> Floor:
    """Median ms per image over ~20 batches, after a warm-up; OpenCV on one thread."""
    cv2.setNumThreads(1)
    for _ in range(3):
        car_pipeline_work(data, flag, decoder)
    started = time.perf_counter()
    car_pipeline_work(data, flag, decoder)
    batch = max(1, int(seconds / 20 / max(time.perf_counter() - started, 1e-6)))
    per_image: list[float] = []
    cpu_per_image: list[float] = []
    faults_before = minor_faults()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(per_image) < 3:
        started, cpu_started = time.perf_counter(), time.thread_time()
        for _ in range(batch):
            car_pipeline_work(data, flag, decoder)
        per_image.append((time.perf_counter() - started) * 1000 / batch)
        cpu_per_image.append((time.thread_time() - cpu_started) * 1000 / batch)
    faults = (minor_faults() - faults_before) / (len(per_image) * batch)
    return Floor(
        statistics.median(per_image),
        os.cpu_count() or 1,
        faults,
        statistics.median(cpu_per_image),
    )


def measure_literal(image: Path, seconds: float = 3.0, flag: int = cv2.IMREAD_COLOR) -> Floor:
    """The work in a new process with glibc's default malloc settings (none of the services'
    allocator settings). A new process each time: glibc's defaults adapt to what the process
    freed before (its mmap threshold rises to the largest buffer freed so far), so a floor
    measured in a long-lived process depends on what that process did earlier."""
    env = {k: v for k, v in os.environ.items() if k not in ALLOCATOR_ENV}
    return _measure_in_new_process(image, seconds, flag, env, "opencv")


def measure_fault_free(image: Path, seconds: float = 3.0, flag: int = cv2.IMREAD_COLOR) -> Floor:
    """The work as the service does it (its decode), in a new process configured like the
    services (their allocator settings)."""
    env = with_allocator_env(os.environ)
    return _measure_in_new_process(image, seconds, flag, env, "service")


def _measure_in_new_process(
    image: Path, seconds: float, flag: int, env: dict[str, str], decoder: str
) -> Floor:
    """On a worker thread, as in the services' image thread pool."""
    command = [sys.executable, "-m", "bench.floor", str(image), "--json"]
    command += ["--seconds", str(seconds), "--flag", str(flag), "--decoder", decoder]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"measuring the floor failed: {result.stderr.strip()}")
    return Floor(**json.loads(result.stdout.splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--flag", type=int, default=cv2.IMREAD_COLOR, help="cv2.imdecode flag")
    parser.add_argument("--decoder", choices=sorted(DECODERS), default="opencv")
    parser.add_argument(
        "--json", action="store_true", help="measure on a worker thread; print one JSON line"
    )
    args = parser.parse_args()
    data = args.image.read_bytes()
    if args.json:
        with ThreadPoolExecutor(1) as pool:
            floor = pool.submit(measure, data, args.seconds, args.flag, args.decoder).result()
        print(json.dumps(asdict(floor)))
        return
    literal = measure_literal(args.image, args.seconds, args.flag)
    fault_free = measure_fault_free(args.image, args.seconds, args.flag)
    for name, floor in (("literal", literal), ("fault-free", fault_free)):
        print(
            f"{args.image.name}, {name} floor: {floor.ms_per_image:.2f} ms/image on one thread "
            f"({floor.cpu_ms_per_image:.2f} ms CPU, {floor.faults_per_image:,.0f} page "
            "faults/image) -> "
            f"{floor.requests_per_s:.0f} req/s on {floor.cores} cores"
        )


if __name__ == "__main__":
    main()
