"""Where `decode.reduce: fast` may decode at 1/2 scale: PSNR of the 640x640 result against an
area-resampled reference (full decode + INTER_AREA), 1/2-scale decode + linear resize vs the
literal path (full decode + linear resize), over many image sizes; and what the rule in
pipeline_service/pipeline/decode_scale.py chooses for each. The measurement behind
docs/decisions/0018-fast-decode-rule.md.

    python -m bench.decode_quality            # the shared photos, then a grid of sizes
    python -m bench.decode_quality --quick    # a coarser grid (a minute or two)

The sizes are made from the shared photos (resized with INTER_AREA, or INTER_CUBIC when
larger, and encoded as JPEG quality 90, like the photos), with both sides multiples of
--step pixels.
"""

import argparse
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline_service.pipeline.decode_scale import decode_flag, half_scale_is_closer

ROOT = Path(__file__).resolve().parents[1]
IMAGE_DIRS = [ROOT.parent / "shared" / "images", ROOT.parents[1] / "shared" / "images"]
TARGET = (640, 640)
HALF = {"color": cv2.IMREAD_REDUCED_COLOR_2, "grayscale": cv2.IMREAD_REDUCED_GRAYSCALE_2}
FULL = {"color": cv2.IMREAD_COLOR, "grayscale": cv2.IMREAD_GRAYSCALE}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


@dataclass(frozen=True)
class Closeness:
    """PSNR (dB) of two 640x640 paths against the area-resampled reference."""

    literal: float  # full decode + INTER_LINEAR
    half: float  # 1/2-scale decode + INTER_LINEAR

    @property
    def margin(self) -> float:
        return self.half - self.literal


def _decoded(image: np.ndarray | None) -> np.ndarray:
    if image is None:
        raise ValueError("OpenCV could not decode the image")
    return image


def closeness(data: bytes, color: str = "color") -> Closeness:
    encoded = np.frombuffer(data, dtype=np.uint8)
    full = _decoded(cv2.imdecode(encoded, FULL[color]))
    reference = cv2.resize(full, TARGET, interpolation=cv2.INTER_AREA)
    literal = cv2.resize(full, TARGET, interpolation=cv2.INTER_LINEAR)
    half_decode = _decoded(cv2.imdecode(encoded, HALF[color]))
    half = cv2.resize(half_decode, TARGET, interpolation=cv2.INTER_LINEAR)
    return Closeness(psnr(literal, reference), psnr(half, reference))


def chosen_scale(data: bytes, size: tuple[int, int], color: str = "color") -> int:
    return decode_flag(color, data, size, TARGET, "fast")[1]


def decode_ms(data: bytes, flag: int, rounds: int = 5, repeat: int = 10) -> float:
    """Median ms of one cv2.imdecode (one OpenCV thread); alternate calls for an A/B."""
    encoded = np.frombuffer(data, dtype=np.uint8)
    times = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(repeat):
            cv2.imdecode(encoded, flag)
        times.append((time.process_time() - started) * 1000 / repeat)
    return statistics.median(times)


def photos(directory: Path) -> None:
    print(
        "| photo | color | literal path dB | 1/2 decode + linear dB | fast decodes at | "
        "chosen path dB | decode CPU ms full / 1/2 |"
    )
    print("| --- | --- | ---: | ---: | --- | ---: | --- |")
    for path in sorted(directory.glob("parking_*.jpg")):
        data = path.read_bytes()
        size = tuple(int(s) for s in path.stem.removeprefix("parking_").split("x"))
        for color in ("color", "grayscale"):
            c = closeness(data, color)
            scale = chosen_scale(data, (size[0], size[1]), color)
            chosen = c.literal if scale == 1 else c.half if scale == 2 else float("nan")
            cpu = ""
            if color == "color":
                full_ms = decode_ms(data, FULL[color])
                half_ms = decode_ms(data, HALF[color])
                cpu = f"{full_ms:.1f} / {half_ms:.1f} ({half_ms / full_ms - 1:+.0%})"
            print(
                f"| {path.name} | {color} | {c.literal:.2f} | {c.half:.2f} | 1/{scale} "
                f"| {chosen:.2f} | {cpu} |"
            )


def sizes(step: int, quick: bool) -> Iterator[tuple[int, int]]:
    """Landscape sizes whose 1/2 image is 75-100 % of the target on its short side, up to
    3x on its long side: where auto decodes in full and the rule has to decide."""
    short_step = step * (4 if quick else 1)
    long_step = step * (8 if quick else 2)
    for height in range(960, 1280, short_step):
        for width in range(height, 3840 + 1, long_step):
            yield width, height


def grid(directory: Path, step: int, quick: bool) -> None:
    sources = {
        "4K photo": _decoded(cv2.imread(str(directory / "parking_3840x2160.jpg"))),
        "1080p photo": _decoded(cv2.imread(str(directory / "parking_1920x1080.jpg"))),
    }
    chosen_margins: list[float] = []
    wrongly_chosen: list[str] = []
    missed = examined = 0
    for width, height in sizes(step, quick):
        for name, source in sources.items():
            smaller = width <= source.shape[1] and height <= source.shape[0]
            pixels = cv2.resize(
                source,
                (width, height),
                interpolation=cv2.INTER_AREA if smaller else cv2.INTER_CUBIC,
            )
            ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])
            assert ok
            c = closeness(encoded.tobytes())
            examined += 1
            if half_scale_is_closer((width, height), TARGET):
                chosen_margins.append(c.margin)
                if c.margin < 0:
                    wrongly_chosen.append(f"{width}x{height} ({name}): {c.margin:+.2f} dB")
            elif c.margin >= 0:
                missed += 1
    print(
        f"\n{examined} images ({step}-pixel steps{', quick' if quick else ''}): the rule "
        f"decodes {len(chosen_margins)} at 1/2; there the 1/2 path is closer by "
        f"{min(chosen_margins, default=float('nan')):+.2f} dB at least, "
        f"{statistics.median(chosen_margins) if chosen_margins else float('nan'):+.2f} dB "
        f"median. Not as close, yet chosen: {len(wrongly_chosen)}"
        + (f" ({'; '.join(wrongly_chosen[:10])})" if wrongly_chosen else "")
        + f". As close or closer, but left to the full decode: {missed}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, help="folder with parking_<W>x<H>.jpg")
    parser.add_argument("--step", type=int, default=16, help="size grid step in pixels")
    parser.add_argument("--quick", action="store_true", help="a coarser grid")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    candidates = [args.images] if args.images else IMAGE_DIRS
    directory = next((d for d in candidates if d and (d / "parking_1920x1080.jpg").is_file()), None)
    if directory is None:
        raise SystemExit("Sample photos not found: pass --images DIR (with parking_*.jpg).")
    photos(directory)
    grid(directory, args.step, args.quick)


if __name__ == "__main__":
    main()
