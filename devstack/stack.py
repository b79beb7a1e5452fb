"""Start the stack in order (PostgreSQL, migrations + seed, PgBouncer if asked, model service,
pipeline service or its replicas behind HAProxy), wait until the services answer, then watch
them; on the way out stop all of it, in reverse."""

import os
import shutil
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from devstack.allocator import with_allocator_env
from devstack.capacity import ConnectionBudget, ensure_fits
from devstack.embedded_postgres import EmbeddedPostgres
from devstack.errors import StackError
from devstack.fleet import Fleet, replica_names
from devstack.haproxy import EdgeLimits, HAProxy, Replica, run_dir
from devstack.pgbouncer import PgBouncer
from devstack.ports import ensure_free
from devstack.probe import accepts, answers
from devstack.processes import GroupProcess
from devstack.signals import SignalFlag, SignalGate
from pipeline_service.config import Settings

ROOT = Path(__file__).resolve().parents[1]
PIPELINE_APP = "pipeline_service.app:create_app"
MODEL_APP = "model_service.app:create_app"
# uvicorn's httptools protocol plus a time limit for request headers (slowloris)
PIPELINE_HTTP = "pipeline_service.http_protocol:HeaderTimeoutProtocol"
READY_PATH = "/openapi.json"  # served by both apps as soon as they accept requests

Say = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class StackOptions:
    host: str
    pipeline_port: int
    model_port: int
    workers: int
    model_workers: int
    data_dir: Path
    database_url: str | None
    access_log: bool
    startup_timeout_s: float
    # A fleet: this many replicas behind HAProxy (on pipeline_port), on replica_port and up.
    replicas: int | None = None
    replica_port: int = 0
    pgbouncer_port: int | None = None  # PgBouncer in front of PostgreSQL on this port
    pgbouncer_pool: int = 20

    def replicas_of_fleet(self) -> list[Replica]:
        names = replica_names(self.replicas or 0)
        return [Replica(name, "127.0.0.1", self.replica_port + i) for i, name in enumerate(names)]


class Service(GroupProcess):
    def __init__(self, name: str, url: str, argv: list[str], env: dict[str, str]) -> None:
        super().__init__(name, argv, env, ROOT)
        self.url = url


class Teardown(ExitStack):
    """An ExitStack that knows whether anything was started (and so needs stopping)."""

    used = False

    def callback(self, *args: Any, **kwargs: Any) -> Any:
        self.used = True
        return super().callback(*args, **kwargs)

    def enter_context(self, cm: AbstractContextManager[T]) -> T:
        result = super().enter_context(cm)
        self.used = True
        return result


# Set when PIPELINE_ADMIN_TOKEN is not: a local stack is for trying things, pipelines included.
DEV_ADMIN_TOKEN = "dev-admin-token"


def run_stack(
    options: StackOptions, gate: SignalGate, say: Say, restart: SignalFlag | None = None
) -> None:
    """Runs until a stop signal (ShutdownRequested) or a failure (StackError); either way
    everything started here is stopped before this returns. `restart` (SIGUSR1) restarts the
    replicas of a fleet one at a time."""
    _ensure_ports_free(options)
    stack = Teardown()
    try:
        database_url = _database(options, stack, say)
        model_url = f"http://{_local(options.host)}:{options.model_port}"
        pipeline_url = f"http://{_local(options.host)}:{options.pipeline_port}"
        env = {**os.environ, "DATABASE_URL": database_url, "MODEL_SERVICE_URL": model_url}
        env.setdefault("PIPELINE_ADMIN_TOKEN", DEV_ADMIN_TOKEN)
        # Large image buffers reused, not faulted in afresh for every image (devstack/allocator.py)
        env = with_allocator_env(env)

        say("applying migrations and the seed")
        migrate = GroupProcess(
            "migrate", [sys.executable, "-m", "pipeline_service.db.migrate"], env, ROOT
        )
        stack.callback(migrate.stop)
        migrate.start(gate)
        if code := migrate.wait():
            raise StackError(f"migrating the database failed (exit code {code}); see above")

        files = run_dir(options.pipeline_port)  # HAProxy's, PgBouncer's; the port is ours
        shutil.rmtree(files, ignore_errors=True)
        files.mkdir(mode=0o755)
        stack.callback(shutil.rmtree, files, ignore_errors=True)
        budget = _connection_budget(options, database_url, say)
        if options.pgbouncer_port is not None:
            env.update(_start_pgbouncer(options, budget, database_url, files, stack, gate, say))

        model = Service("model service", model_url, _uvicorn(MODEL_APP, options, "model"), env)
        services = [model]
        if options.replicas is None:
            services.append(
                Service("pipeline service", pipeline_url, _uvicorn(PIPELINE_APP, options), env)
            )
        for service in services:
            say(f"starting the {service.name} on {service.url}")
            stack.callback(service.stop)  # stopped in reverse: pipeline, model, PostgreSQL
            service.start(gate)
        _wait_until_ready(services, options.startup_timeout_s)
        fleet = None
        if options.replicas is not None:
            fleet = _start_fleet(options, env, files, stack, gate, say)
        say(
            f"ready: pipeline service {pipeline_url} (Swagger UI {pipeline_url}/docs), "
            f"model service {model_url}. Ctrl-C stops everything."
        )
        if env["PIPELINE_ADMIN_TOKEN"] == DEV_ADMIN_TOKEN:
            say(
                f"pipeline admin token (development only): {DEV_ADMIN_TOKEN} -- send "
                f"'Authorization: Bearer {DEV_ADMIN_TOKEN}'; set PIPELINE_ADMIN_TOKEN to choose one"
            )
        _watch(services, fleet, gate, say, restart)
    finally:
        gate.hold_forever()  # a second Ctrl-C must not cut the cleanup short
        if stack.used:
            say("stopping everything")
            stack.close()
            say("stopped; nothing of the stack is left running")


def _ensure_ports_free(options: StackOptions) -> None:
    ensure_free(options.host, options.pipeline_port, "pipeline service", "--pipeline-port")
    ensure_free(options.host, options.model_port, "model service", "--model-port")
    for replica in options.replicas_of_fleet():
        ensure_free(replica.host, replica.port, replica.name, "--replica-port")
    if options.pgbouncer_port is not None:
        ensure_free("127.0.0.1", options.pgbouncer_port, "PgBouncer", "--pgbouncer-port")


def _connection_budget(options: StackOptions, database_url: str, say: Say) -> ConnectionBudget:
    """What the pipeline service's processes may open, checked against max_connections."""
    try:
        settings = Settings(database_url=database_url)
    except ValidationError as error:
        first = error.errors()[0]
        raise StackError(f"setting {first['loc'][0]}: {first['msg']}") from None
    budget = ConnectionBudget(
        options.replicas or 1,
        options.workers,
        settings.db_pool_size,
        settings.max_overflow,
        options.pgbouncer_pool if options.pgbouncer_port is not None else None,
    )
    available = ensure_fits(libpq(database_url), budget)
    say(f"connections: {budget.explain()} of the {available} PostgreSQL accepts")
    return budget


def _start_pgbouncer(
    options: StackOptions,
    budget: ConnectionBudget,
    database_url: str,
    files: Path,
    stack: Teardown,
    gate: SignalGate,
    say: Say,
) -> dict[str, str]:
    """PgBouncer started; returns the services' settings that route through it."""
    assert options.pgbouncer_port is not None
    listen = ("127.0.0.1", options.pgbouncer_port)
    pgbouncer = PgBouncer(
        libpq(database_url), listen, options.pgbouncer_pool, budget.pooled + 10, files, os.environ
    )
    say(f"starting PgBouncer (transaction mode) on {listen[0]}:{listen[1]}")
    stack.callback(pgbouncer.stop)
    pgbouncer.start(gate)
    deadline = time.monotonic() + options.startup_timeout_s
    while not accepts(listen):
        if (code := pgbouncer.exit_code()) is not None:
            raise StackError(f"PgBouncer exited during startup (exit code {code}); see above")
        if time.monotonic() > deadline:
            raise StackError(f"PgBouncer did not listen within {options.startup_timeout_s:g} s")
        time.sleep(0.05)
    return {
        "DATABASE_URL": pgbouncer.url,
        "LISTEN_DATABASE_URL": database_url,
        "DB_TRANSACTION_POOLER": "true",
    }


def _start_fleet(
    options: StackOptions,
    env: dict[str, str],
    files: Path,
    stack: Teardown,
    gate: SignalGate,
    say: Say,
) -> Fleet:
    replicas = options.replicas_of_fleet()
    limits = EdgeLimits(model_timeout_s=_model_timeout_s(env))
    haproxy = HAProxy((options.host, options.pipeline_port), replicas, files, limits, env)
    fleet = Fleet(
        replicas,
        lambda r: _uvicorn(PIPELINE_APP, options, port=r.port, host=r.host),
        env,
        haproxy,
        ROOT,
        options.startup_timeout_s,
        drain_timeout_s=limits.server_s,
    )
    where = ", ".join(f"{r.name} {fleet.url(r.name)}" for r in replicas)
    say(f"starting {len(replicas)} pipeline-service replicas ({where}) behind HAProxy")
    stack.callback(fleet.stop)
    fleet.start(gate)
    say(
        f"HAProxy on {options.host}:{options.pipeline_port} spreads requests over {len(replicas)} "
        f"replicas (X-Served-By names each); its state: python -m devstack.haproxy --port "
        f"{options.pipeline_port} show stat; kill -USR1 {os.getpid()} restarts the replicas "
        "one at a time"
    )
    return fleet


def _model_timeout_s(env: dict[str, str]) -> float:
    try:
        return float(env.get("MODEL_TIMEOUT_S") or 5.0)
    except ValueError:
        return 5.0  # the service itself refuses it, with the reason


def libpq(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _database(options: StackOptions, stack: Teardown, say: Say) -> str:
    if options.database_url:
        say(f"database {_masked(options.database_url)} (from DATABASE_URL)")
        return options.database_url
    say(f"starting the embedded PostgreSQL (data in {options.data_dir})")
    postgres = EmbeddedPostgres(options.data_dir)
    url = stack.enter_context(postgres)
    if postgres.adopted_pid is not None:
        say(f"found a PostgreSQL left running on it (pid {postgres.adopted_pid}); reusing it")
    say(f"database {url} (look inside: make psql)")
    return url


def _uvicorn(
    app: str,
    options: StackOptions,
    which: str = "pipeline",
    port: int | None = None,
    host: str | None = None,
) -> list[str]:
    port = port or (options.model_port if which == "model" else options.pipeline_port)
    workers = options.model_workers if which == "model" else options.workers
    argv = [
        sys.executable, "-m", "uvicorn", "--factory", app,
        "--host", host or options.host, "--port", str(port), "--workers", str(workers),
        # Longer than MODEL_TIMEOUT_S (5 s) so requests in flight finish, shorter than the
        # launcher's 10 s before SIGKILL (docs/behaviour.md, Shutdown).
        "--timeout-graceful-shutdown", "8",
    ]  # fmt: skip
    if which == "pipeline":
        argv += ["--http", PIPELINE_HTTP]
    if not options.access_log:
        argv.append("--no-access-log")
    return argv


def _wait_until_ready(services: list[Service], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = list(services)
    while waiting:
        for service in list(waiting):
            _ensure_running(service, "during startup")
            if answers(service.url + READY_PATH):
                waiting.remove(service)
        if waiting and time.monotonic() > deadline:
            names = " and ".join(s.name for s in waiting)
            raise StackError(f"the {names} did not answer within {timeout_s:g} s")
        time.sleep(0.1)


def _watch(
    services: list[Service],
    fleet: Fleet | None,
    gate: SignalGate,
    say: Say,
    restart: SignalFlag | None,
) -> None:
    while True:
        for service in services:
            _ensure_running(service, "unexpectedly")
        if fleet is not None:
            if fleet.haproxy.exit_code() is not None:
                raise StackError(f"HAProxy exited unexpectedly ({fleet.haproxy.exit_code()})")
            fleet.replace_exited(gate, say)
            if restart is not None and restart.take():
                try:
                    fleet.rolling_restart(gate, say)
                    say("rolling restart done")
                except StackError as error:  # the fleet serves on; say why it stopped
                    say(f"rolling restart stopped: {error}")
        time.sleep(0.5)


def _ensure_running(service: Service, when: str) -> None:
    code = service.exit_code()
    if code is not None:
        raise StackError(f"the {service.name} exited {when} (exit code {code}); see its output")


def _local(host: str) -> str:
    """Where to reach a server bound to `host` from this machine."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _masked(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "…@" + url.rpartition("@")[2]  # not a URL SQLAlchemy reads; the migration says why
