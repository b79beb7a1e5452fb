"""Start the stack in order (PostgreSQL, migrations + seed, model service, pipeline service),
wait until both services answer, then watch them; on the way out stop all of it, in reverse."""

import http.client
import os
import sys
import time
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from devstack.allocator import with_allocator_env
from devstack.embedded_postgres import EmbeddedPostgres
from devstack.errors import StackError
from devstack.ports import ensure_free
from devstack.processes import GroupProcess
from devstack.signals import SignalGate

ROOT = Path(__file__).resolve().parents[1]
PIPELINE_APP = "pipeline_service.app:create_app"
MODEL_APP = "model_service.app:create_app"
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


def run_stack(options: StackOptions, gate: SignalGate, say: Say) -> None:
    """Runs until a stop signal (ShutdownRequested) or a failure (StackError); either way
    everything started here is stopped before this returns."""
    ensure_free(options.host, options.pipeline_port, "pipeline service", "--pipeline-port")
    ensure_free(options.host, options.model_port, "model service", "--model-port")
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

        services = [
            Service("model service", model_url, _uvicorn(MODEL_APP, options, "model"), env),
            Service("pipeline service", pipeline_url, _uvicorn(PIPELINE_APP, options), env),
        ]
        for service in services:
            say(f"starting the {service.name} on {service.url}")
            stack.callback(service.stop)  # stopped in reverse: pipeline, model, PostgreSQL
            service.start(gate)
        _wait_until_ready(services, options.startup_timeout_s)
        say(
            f"ready: pipeline service {pipeline_url} (Swagger UI {pipeline_url}/docs), "
            f"model service {model_url}. Ctrl-C stops everything."
        )
        if env["PIPELINE_ADMIN_TOKEN"] == DEV_ADMIN_TOKEN:
            say(
                f"pipeline admin token (development only): {DEV_ADMIN_TOKEN} -- send "
                f"'Authorization: Bearer {DEV_ADMIN_TOKEN}'; set PIPELINE_ADMIN_TOKEN to choose one"
            )
        _watch(services)
    finally:
        gate.hold_forever()  # a second Ctrl-C must not cut the cleanup short
        if stack.used:
            say("stopping everything")
            stack.close()
            say("stopped; nothing of the stack is left running")


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


def _uvicorn(app: str, options: StackOptions, which: str = "pipeline") -> list[str]:
    port = options.model_port if which == "model" else options.pipeline_port
    workers = options.model_workers if which == "model" else options.workers
    argv = [
        sys.executable, "-m", "uvicorn", "--factory", app,
        "--host", options.host, "--port", str(port), "--workers", str(workers),
        # Longer than MODEL_TIMEOUT_S (5 s) so requests in flight finish, shorter than the
        # launcher's 10 s before SIGKILL (docs/behaviour.md, Shutdown).
        "--timeout-graceful-shutdown", "8",
    ]  # fmt: skip
    if not options.access_log:
        argv.append("--no-access-log")
    return argv


def _wait_until_ready(services: list[Service], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = list(services)
    while waiting:
        for service in list(waiting):
            _ensure_running(service, "during startup")
            if _answers(service.url + READY_PATH):
                waiting.remove(service)
        if waiting and time.monotonic() > deadline:
            names = " and ".join(s.name for s in waiting)
            raise StackError(f"the {names} did not answer within {timeout_s:g} s")
        time.sleep(0.1)


def _watch(services: list[Service]) -> None:
    while True:
        for service in services:
            _ensure_running(service, "unexpectedly")
        time.sleep(0.5)


def _ensure_running(service: Service, when: str) -> None:
    code = service.exit_code()
    if code is not None:
        raise StackError(f"the {service.name} exited {when} (exit code {code}); see its output")


_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers(url: str) -> bool:
    try:
        with _no_proxy.open(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):
        return False


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
