"""python -m devstack [options]: the whole stack, until Ctrl-C. See docs/operations.md."""

import argparse
import contextlib
import os
import sys
from pathlib import Path

from devstack.errors import StackError
from devstack.signals import ShutdownRequested, SignalGate
from devstack.stack import ROOT, StackOptions, run_stack


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (1..65535)")
    return value


def _env_int(parser: argparse.ArgumentParser, name: str, default: int = 1) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError as error:
        parser.error(f"environment variable {name}: {error}")


def parse_options(argv: list[str] | None = None) -> StackOptions:
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description=(
            "Run PostgreSQL (the one at DATABASE_URL, else an embedded one), migrations and "
            "seed, the model service and the pipeline service, until Ctrl-C. The services "
            "get this process's environment (MODEL_*, DB_POOL_SIZE, ...)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address both services listen on")
    parser.add_argument("--pipeline-port", type=_port, default=8000)
    parser.add_argument("--model-port", type=_port, default=8001)
    parser.add_argument(
        "--workers",
        type=_positive_int,
        # One per core: the bench measured 113 against 80 req/s for one (docs/performance.md).
        default=_env_int(parser, "PIPELINE_WORKERS", os.cpu_count() or 1),
        help="uvicorn worker processes of the pipeline service "
        "(default: $PIPELINE_WORKERS, else one per core)",
    )
    parser.add_argument(
        "--model-workers",
        type=_positive_int,
        default=_env_int(parser, "MODEL_WORKERS"),
        help="uvicorn worker processes of the model service (default: $MODEL_WORKERS or 1)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=ROOT / ".data" / "postgres",
        help="where the embedded PostgreSQL keeps its data (default: .data/postgres of the "
        "checkout); unused when DATABASE_URL is set",
    )
    parser.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="do not log every request (for load tests)",
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=60.0,
        help="seconds the services get to answer (default 60)",
    )
    args = parser.parse_args(argv)
    if args.pipeline_port == args.model_port:
        parser.error("--pipeline-port and --model-port must differ")
    return StackOptions(
        host=args.host,
        pipeline_port=args.pipeline_port,
        model_port=args.model_port,
        workers=args.workers,
        model_workers=args.model_workers,
        data_dir=args.data_dir.resolve(),
        database_url=os.environ.get("DATABASE_URL") or None,
        access_log=args.access_log,
        startup_timeout_s=args.startup_timeout,
    )


def say(message: str) -> None:
    with contextlib.suppress(OSError):  # whoever read our stdout has gone: keep going
        print(f"devstack: {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    gate = SignalGate()
    gate.install()
    try:
        run_stack(options, gate, say)
    except StackError as error:
        print(f"devstack: error: {error}", file=sys.stderr, flush=True)
        return 1
    except ShutdownRequested:
        return 0
    finally:
        gate.restore()
    return 0
