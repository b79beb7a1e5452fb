"""The compute floor: the car pipeline's unavoidable CPU work on one image, one thread.

np.frombuffer -> cv2.imdecode -> resize 640x640 -> normalize -> bytes -> base64, in a tight
loop on the same image. Requests/s for the machine = cores x 1000 / ms per image: what the
service could reach if it did nothing but this work on every core.

    python bench/floor.py ../shared/images/parking_1920x1080.jpg [--seconds 3]
"""

import argparse
import base64
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class Floor:
    ms_per_image: float  # median over the batches
    cores: int

    @property
    def requests_per_s(self) -> float:
        return self.cores * 1000 / self.ms_per_image

    @staticmethod
    def mean(*floors: "Floor") -> "Floor":
        return Floor(statistics.fmean(f.ms_per_image for f in floors), floors[0].cores)


def car_pipeline_work(data: bytes, flag: int = cv2.IMREAD_COLOR) -> str:
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    image = cv2.resize(image, (640, 640), interpolation=cv2.INTER_LINEAR)
    image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)
    return base64.b64encode(image.tobytes()).decode("ascii")


def measure(data: bytes, seconds: float = 3.0, flag: int = cv2.IMREAD_COLOR) -> Floor:
    """Median ms per image over ~20 batches, after a warm-up; OpenCV on one thread."""
    cv2.setNumThreads(1)
    for _ in range(3):
        car_pipeline_work(data, flag)
    started = time.perf_counter()
    car_pipeline_work(data, flag)
    batch = max(1, int(seconds / 20 / max(time.perf_counter() - started, 1e-6)))
    per_image = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(per_image) < 3:
        started = time.perf_counter()
        for _ in range(batch):
            car_pipeline_work(data, flag)
        per_image.append((time.perf_counter() - started) * 1000 / batch)
    return Floor(statistics.median(per_image), os.cpu_count() or 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    floor = measure(args.image.read_bytes(), args.seconds)
    print(
        f"{args.image.name}: {floor.ms_per_image:.2f} ms/image on one thread -> "
        f"floor {floor.requests_per_s:.0f} req/s on {floor.cores} cores"
    )


if __name__ == "__main__":
    main()
