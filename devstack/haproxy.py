"""HAProxy (the Debian package) in front of the pipeline-service replicas: its configuration,
its process, and its runtime API (a unix socket) to drain a replica and read its state.

Why HAProxy and these values: docs/decisions/ (HAProxy) and docs/scaling.md.
"""

import argparse
import csv
import io
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from devstack.errors import StackError
from devstack.processes import GroupProcess
from devstack.signals import SignalGate

BACKEND = "replicas"
SOCKET_NAME = "haproxy.sock"


def run_dir(pipeline_port: int) -> Path:
    """Where a stack on `pipeline_port` keeps HAProxy's (and PgBouncer's) files."""
    return Path(tempfile.gettempdir()) / f"devstack-{pipeline_port}"


SYSTEM_BIN = "/usr/sbin:/sbin"  # where Debian puts it; not on every PATH
INSTALL_HINT = "install HAProxy: apt-get install haproxy (Debian/Ubuntu; make run does it as root)"

# Answers HAProxy makes itself, as problem+json like every other error of the service.
EDGE_PROBLEMS = {
    400: ("Bad Request", "The request is not valid HTTP, or its headers exceed 16 KiB."),
    408: ("Request Timeout", "The request's headers did not arrive in time; send them at once."),
    500: ("Internal Server Error", "The load balancer failed; try again."),
    502: ("Bad Gateway", "The replica serving this request failed before answering; retry."),
    503: ("Service Unavailable", "No replica is ready to serve; try again shortly."),
    504: ("Gateway Timeout", "The replica did not answer in time; try again."),
}
HEADERS_TOO_LARGE = (431, "Request Header Fields Too Large", "")


@dataclass(frozen=True)
class Replica:
    """A server of the backend: the name HAProxy and X-Served-By use, and where it listens."""

    name: str
    host: str
    port: int


@dataclass(frozen=True)
class EdgeLimits:
    """Limits HAProxy puts on clients and replicas (docs/scaling.md, "Edge limits")."""

    model_timeout_s: float = 5.0
    # Slow clients: all request headers within this (slowloris), then idle at most client_s.
    http_request_s: float = 10.0
    client_s: float = 30.0
    # A request may take the model's deadline plus its own work, retries and the run write.
    server_margin_s: float = 10.0
    max_header_bytes: int = 8192
    # Health checks: a replica is out after `fall` failed checks `check_interval_s` apart
    # (at once when a connection to it is refused), back in after `rise` good ones.
    check_interval_s: float = 1.0
    fall: int = 2
    rise: int = 2
    check_timeout_s: float = 3.0  # longer than READINESS_TIMEOUT_S (2 s) of /readyz

    @property
    def server_s(self) -> float:
        return self.model_timeout_s + self.server_margin_s


def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def _problem(status: int, title: str, detail: str) -> bytes:
    return orjson.dumps(
        {
            "type": "/problems/" + title.lower().replace(" ", "-"),
            "title": title,
            "status": status,
            "detail": detail,
        }
    )


def _error_file(status: int, title: str, detail: str) -> bytes:
    body = _problem(status, title, detail)
    head = (
        f"HTTP/1.1 {status} {title}\r\n"
        "content-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\n"
        "cache-control: no-cache\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


def render_config(
    bind: tuple[str, int],
    replicas: list[Replica],
    socket_path: Path,
    error_dir: Path,
    limits: EdgeLimits,
) -> str:
    status, title, _ = HEADERS_TOO_LARGE
    too_large = _problem(
        status, title, f"The request headers exceed {limits.max_header_bytes} bytes."
    ).decode()
    servers = "\n".join(f"  server {r.name} {r.host}:{r.port}" for r in replicas)
    errorfiles = "\n".join(f"  errorfile {code} {error_dir}/{code}.http" for code in EDGE_PROBLEMS)
    return f"""\
# Written by devstack/haproxy.py at each start; see docs/scaling.md.
global
  stats socket {socket_path} mode 600 level admin
  maxconn 4096
  # A soft stop (Ctrl-C) lets answers in flight finish, for at most this long.
  hard-stop-after {_ms(limits.server_s)}

defaults
  mode http
  option dontlognull
  timeout connect 1s
  timeout http-request {_ms(limits.http_request_s)}
  timeout client {_ms(limits.client_s)}
  timeout http-keep-alive {_ms(limits.client_s)}
  timeout server {_ms(limits.server_s)}
  timeout queue {_ms(limits.server_s)}
  timeout check {_ms(limits.check_timeout_s)}
  # A request that could not reach a replica (refused: it just died) goes to another one.
  # Nothing else is retried: a request a replica has started must not run twice.
  retries 2
  retry-on conn-failure
  option redispatch 1
{errorfiles}

frontend pipeline
  bind {bind[0]}:{bind[1]}
  http-request return status {status} content-type application/problem+json string '{too_large}' if {{ req.hdrs,length gt {limits.max_header_bytes} }}
  default_backend {BACKEND}

backend {BACKEND}
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server check inter {_ms(limits.check_interval_s)} fall {limits.fall} rise {limits.rise} observe layer4 error-limit 1 on-error mark-down
{servers}
"""  # noqa: E501


def require_haproxy() -> str:
    found = shutil.which("haproxy") or shutil.which("haproxy", path=SYSTEM_BIN)
    if found is None:
        raise StackError(f"--replicas needs HAProxy, which is not installed: {INSTALL_HINT}")
    return found


@dataclass(frozen=True)
class ServerState:
    status: str  # UP, DOWN, DRAIN, MAINT, "UP 1/2" while rising...
    sessions: int  # requests it serves now
    queued: int  # requests waiting for it
    check: str  # last check's status, e.g. L7OK, L4CON
    total: int  # requests sent to it so far


class HAProxy(GroupProcess):
    """`haproxy -db` (foreground) with a configuration written to `run_dir`."""

    def __init__(
        self,
        bind: tuple[str, int],
        replicas: list[Replica],
        run_dir: Path,
        limits: EdgeLimits,
        env: Mapping[str, str],
    ) -> None:
        self.bind = bind
        self.replicas = replicas
        self.limits = limits
        self.socket_path = run_dir / SOCKET_NAME
        self.config_path = run_dir / "haproxy.cfg"
        errors = run_dir / "errors"
        errors.mkdir(parents=True, exist_ok=True)
        for code, (title, detail) in EDGE_PROBLEMS.items():
            (errors / f"{code}.http").write_bytes(_error_file(code, title, detail))
        self.config_path.write_text(render_config(bind, replicas, self.socket_path, errors, limits))
        argv = [require_haproxy(), "-db", "-f", str(self.config_path)]
        super().__init__("HAProxy", argv, env, run_dir)

    def start(self, gate: SignalGate) -> None:
        check = GroupProcess("haproxy -c", [*self.argv, "-c"], self.env, self.cwd)
        check.start(gate)
        if check.wait() != 0:
            raise StackError(f"HAProxy refused its configuration {self.config_path}; see above")
        super().start(gate)
        deadline = time.monotonic() + 10
        while True:  # until its runtime API answers
            try:
                self.command("show info")
                return
            except OSError:
                if (code := self.exit_code()) is not None:
                    raise StackError(
                        f"HAProxy exited at startup (exit code {code}); see above"
                    ) from None
                if time.monotonic() > deadline:
                    raise StackError(
                        f"HAProxy's runtime API {self.socket_path} did not answer"
                    ) from None
                time.sleep(0.05)

    def stop(self, grace_s: float = 10.0) -> None:
        """A soft stop (SIGUSR1): stop listening, let answers in flight finish (at most
        `hard-stop-after`), then exit; SIGTERM/SIGKILL only if it hangs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + self.limits.server_s + 1
            while self.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
        super().stop(grace_s)

    def command(self, text: str, timeout_s: float = 5.0) -> str:
        return runtime_api(self.socket_path, text, timeout_s)

    def set_state(self, replica: str, state: str) -> None:
        """state: ready, drain or maint."""
        answer = self.command(f"set server {BACKEND}/{replica} state {state}").strip()
        if answer:
            raise StackError(f"HAProxy refused 'set server {replica} state {state}': {answer}")

    def states(self) -> dict[str, ServerState]:
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {
            row["svname"]: ServerState(
                row["status"],
                int(row["scur"] or 0),
                int(row["qcur"] or 0),
                row["check_status"],
                int(row["stot"] or 0),
            )
            for row in rows
            if row["pxname"] == BACKEND and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def wait_for(self, replica: str, wanted: str, timeout_s: float) -> ServerState:
        """Until the replica's status is `wanted` (e.g. UP) with nothing in flight on it
        when `wanted` is DRAIN; StackError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.states()[replica]
            idle = state.sessions == 0 and state.queued == 0
            if state.status == wanted and (wanted != "DRAIN" or idle):
                return state
            if time.monotonic() > deadline:
                raise StackError(
                    f"HAProxy: {replica} is {state.status} with {state.sessions} requests in "
                    f"flight after {timeout_s:g} s, not {wanted}"
                )
            time.sleep(0.05)


def runtime_api(socket_path: Path, text: str, timeout_s: float = 5.0) -> str:
    """One command; the answer ends when HAProxy closes the connection."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(str(socket_path))
        sock.sendall(text.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def main() -> None:
    """python -m devstack.haproxy [--port 8000] show servers state: a command for the runtime
    API of the HAProxy of the stack whose pipeline port is --port (no socat needed)."""
    parser = argparse.ArgumentParser(prog="python -m devstack.haproxy", description=main.__doc__)
    parser.add_argument("--port", type=int, default=8000, help="the stack's --pipeline-port")
    parser.add_argument("command", nargs="+", help="e.g. show stat, set server ... state drain")
    args = parser.parse_args()
    path = run_dir(args.port) / SOCKET_NAME
    try:
        print(runtime_api(path, " ".join(args.command)), end="")
    except OSError as error:
        sys.exit(
            f"no HAProxy answers on {path} ({error.strerror}): is `make run ARGS='--replicas "
            f"N --pipeline-port {args.port}'` running?"
        )


if __name__ == "__main__":
    main()
