"""python -m devstack [options]: the whole stack, until Ctrl-C. See docs/operations.md."""

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path

from devstack.errors import StackError
from devstack.signals import ShutdownRequested, SignalFlag, SignalGate
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
        help="uvicorn worker processes of the pipeline service, of each replica with "
        "--replicas (default: $PIPELINE_WORKERS, else one per core, shared by the replicas)",
    )
    parser.add_argument(
        "--replicas",
        type=_positive_int,
        help="run this many pipeline-service replicas behind HAProxy, which listens on "
        "--pipeline-port (docs/scaling.md); default: one service, no load balancer",
    )
    parser.add_argument(
        "--replica-port",
        type=_port,
        help="port of the first replica, the others follow (default: --pipeline-port + 10)",
    )
    parser.add_argument(
        "--pgbouncer",
        action="store_true",
        help="put PgBouncer (transaction mode) between the pipeline service and PostgreSQL",
    )
    parser.add_argument(
        "--pgbouncer-port", type=_port, default=6432, help="PgBouncer's port (default 6432)"
    )
    parser.add_argument(
        "--pgbouncer-pool",
        type=_positive_int,
        default=20,
        help="connections PgBouncer may open to PostgreSQL (default 20)",
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
    replicas = args.replicas or 1
    replica_port = args.replica_port or args.pipeline_port + 10
    if args.replicas is not None and replica_port + replicas > 65536:
        parser.error(f"--replica-port {replica_port} leaves no room for {replicas} replicas")
    taken = {args.pipeline_port, args.model_port, args.pgbouncer_port if args.pgbouncer else 0}
    if args.replicas is not None and taken & set(range(replica_port, replica_port + replicas)):
        parser.error("the replicas' ports overlap another port; choose --replica-port")
    if args.pgbouncer and args.pgbouncer_port in (args.pipeline_port, args.model_port):
        parser.error("--pgbouncer-port must differ from the services' ports")
    # One worker per core: the bench measured 113 against 80 req/s for one (docs/performance.md);
    # the replicas share the cores.
    cores = max(1, (os.cpu_count() or 1) // replicas)
    workers = args.workers or _env_int(parser, "PIPELINE_WORKERS", cores)
    return StackOptions(
        host=args.host,
        pipeline_port=args.pipeline_port,
        model_port=args.model_port,
        workers=workers,
        model_workers=args.model_workers,
        data_dir=args.data_dir.resolve(),
        database_url=os.environ.get("DATABASE_URL") or None,
        access_log=args.access_log,
        startup_timeout_s=args.startup_timeout,
        replicas=args.replicas,
        replica_port=replica_port,
        pgbouncer_port=args.pgbouncer_port if args.pgbouncer else None,
        pgbouncer_pool=args.pgbouncer_pool,
    )


def say(message: str) -> None:
    with contextlib.suppress(OSError):  # whoever read our stdout has gone: keep going
        print(f"devstack: {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    gate = SignalGate()
    gate.install()
    restart = SignalFlag(signal.SIGUSR1)
    restart.install()
    try:
        run_stack(options, gate, say, restart)
    except StackError as error:
        print(f"devstack: error: {error}", file=sys.stderr, flush=True)
        return 1
    except ShutdownRequested:
        return 0
    finally:
        restart.restore()
        gate.restore()
    return 0
