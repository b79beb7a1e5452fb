#!/usr/bin/env python3
"""`make compose-check`: the Docker path, end to end, on this machine's Docker.

Copies the checkout (tracked and new files, as a clone would have them) to a temporary
folder, writes its .env from .env.example with fresh secrets and free host ports, builds the
images, and brings the stack up as compose project `image-pipeline-check` (never the
`image-pipeline` of a user's own `docker compose up`). Then it checks what a user does and
relies on, one line per check, stops at the first failure, and always removes what it
started (`down -v`). Exit status 0 only if every check passed. Needs Docker with Compose
v2.24+ and curl; Python's standard library only. Output of docker and of the services goes
to .data/compose-check.log.

    make compose-check
    DOCKER_BUILDKIT=0 make compose-check        # offline: see docs/docker.md
"""

import http.cookiejar
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "image-pipeline-check"
LOG = ROOT / ".data" / "compose-check.log"
HEALTHY_WITHIN_S = 300
STOPPED_WITHIN_S = 10  # Docker's own default before SIGKILL
LONG_RUNNING = ("postgres", "model_service", "pipeline_service", "adminer")
WITH_HEALTHCHECK = ("postgres", "model_service", "pipeline_service")
SERVICE_UID = "10001"
# Values of .env.example replaced for the check; each must be in .env.example.
SECRET_KEYS = ("POSTGRES_PASSWORD", "PIPELINE_ADMIN_TOKEN")
# Variables of the caller's shell that would override .env or pick another project.
SHELL_OVERRIDES = ("COMPOSE_PROJECT_NAME", "COMPOSE_FILE", "COMPOSE_PROFILES", "COMPOSE_ENV_FILES")


class CheckFailed(Exception):
    pass


def log(text: str) -> None:
    with LOG.open("a") as out:
        out.write(text if text.endswith("\n") else text + "\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    """`docker compose -p image-pipeline-check` in the copy, with the copy's .env only."""

    def __init__(self, workdir: Path, settings: dict[str, str]) -> None:
        self.workdir = workdir
        self.settings = settings
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in settings and key not in SHELL_OVERRIDES
        }
        self.pipeline_url = f"http://127.0.0.1:{settings['PIPELINE_PORT']}"
        self.adminer_url = f"http://127.0.0.1:{settings['ADMINER_PORT']}"
        self.changed_version: int | None = None  # of pipeline 1, once check_change_pipeline ran

    def run(self, *args: str, check: bool = True, timeout: float = 900) -> str:
        """Output (stdout and stderr) of `docker compose ARGS`, also written to the log."""
        # -f: the repository's file alone, not a docker-compose.override.yml of yours
        command = ["docker", "compose", "-p", PROJECT, "-f", "docker-compose.yml", *args]
        log(f"$ {' '.join(command)}")
        done = subprocess.run(
            command,
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
        log(done.stdout)
        if check and done.returncode != 0:
            tail = " | ".join(line.strip() for line in done.stdout.strip().splitlines()[-3:])
            raise CheckFailed(f"`docker compose {' '.join(args)}` exited {done.returncode}: {tail}")
        return done.stdout

    def containers(self) -> list[dict[str, Any]]:
        out = self.run("ps", "--all", "--format", "json")
        text = out.strip()
        if text.startswith("["):  # Compose before 2.21: one array
            return list(json.loads(text))
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def by_service(self) -> dict[str, dict[str, Any]]:
        return {c["Service"]: c for c in self.containers()}

    def psql(self, sql: str) -> str:
        user, db = self.settings["POSTGRES_USER"], self.settings["POSTGRES_DB"]
        return self.run("exec", "-T", "postgres", "psql", "-U", user, "-d", db, "-Atc", sql).strip()

    def wait_until_healthy(self) -> str:
        deadline = time.monotonic() + HEALTHY_WITHIN_S
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            containers = self.by_service()
            states = {name: _state(c) for name, c in containers.items()}
            migrate = containers.get("migrate")
            if migrate and migrate["State"] == "exited" and migrate.get("ExitCode") != 0:
                raise CheckFailed(
                    f"migrate exited {migrate.get('ExitCode')}: {self.tail('migrate')}"
                )
            done = all(states.get(name) == "healthy" for name in WITH_HEALTHCHECK)
            if done and states.get("adminer") == "running" and states.get("migrate") == "exited 0":
                return ", ".join(f"{name} {state}" for name, state in sorted(states.items()))
            time.sleep(1)
        raise CheckFailed(f"not healthy within {HEALTHY_WITHIN_S} s: {states}")

    def tail(self, service: str, lines: int = 5) -> str:
        return " | ".join(
            self.run("logs", "--no-log-prefix", service, check=False).splitlines()[-lines:]
        )


def _state(container: dict[str, Any]) -> str:
    if container["State"] == "exited":
        return f"exited {container.get('ExitCode')}"
    return container.get("Health") or container["State"]


def call(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    opener: urllib.request.OpenerDirector | None = None,
) -> tuple[int, dict[str, str], bytes]:
    data = None
    headers = dict(headers or {})
    if isinstance(body, dict | list):
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    elif isinstance(body, bytes):
        data = body
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=30) as answer:
            return answer.status, dict(answer.headers.items()), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


# ----------------------------------------------------------------------------- the checks


def check_build(stack: Stack) -> str:
    stack.run("build")
    return "pipeline_service, model_service (and migrate) images built"


def check_up(stack: Stack) -> str:
    stack.run("up", "--detach")
    return stack.wait_until_healthy()


def check_migrate(stack: Stack) -> str:
    out = stack.run("logs", "--no-log-prefix", "migrate")
    if "database is up to date and seeded" not in out:
        raise CheckFailed(f"migrate did not say it was done: {stack.tail('migrate')}")
    return "migrate: database is up to date and seeded"


def check_requests(stack: Stack) -> str:
    done = subprocess.run(
        [str(stack.workdir / "requests.sh")],
        env={**stack.env, "PIPELINE_URL": stack.pipeline_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    log(done.stdout + done.stderr)
    answers = re.findall(r"-> HTTP (\d+)", done.stdout)
    if done.returncode != 0 or answers != ["200"] * 3:
        raise CheckFailed(f"requests.sh exited {done.returncode}, answers {answers}")
    return "requests.sh: 3 x POST /process_image -> 200"


def check_rows(stack: Stack) -> str:
    runs = stack.psql("SELECT count(*) FROM processing_runs WHERE status = 'succeeded'")
    found = stack.psql("SELECT count(*) FROM processing_runs WHERE car_detected")
    boxes = stack.psql("SELECT count(*) FROM detections")
    if runs != "3" or found != boxes:
        raise CheckFailed(f"{runs} succeeded runs (expected 3), {found} with a car, {boxes} boxes")
    return f"psql: 3 succeeded runs in processing_runs, {boxes} rows in detections"


def check_adminer(stack: Stack) -> str:
    """Log in as a person would (the form's own fields) and see the service's tables."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    status, _, page = call("GET", stack.adminer_url + "/", opener=opener)
    if status != 200 or b"Adminer" not in page:
        raise CheckFailed(f"GET / answered {status}")
    settings = stack.settings
    form = {
        "auth[driver]": "pgsql",
        "auth[server]": "postgres",
        "auth[username]": settings["POSTGRES_USER"],
        "auth[password]": settings["POSTGRES_PASSWORD"],
        "auth[db]": settings["POSTGRES_DB"],
    }
    body = urllib.parse.urlencode(form).encode()
    headers = {"content-type": "application/x-www-form-urlencoded"}
    call("POST", stack.adminer_url + "/", body, headers, opener=opener)
    query = urllib.parse.urlencode(
        {
            "pgsql": "postgres",
            "username": settings["POSTGRES_USER"],
            "db": settings["POSTGRES_DB"],
            "ns": "public",
        }
    )
    status, _, page = call("GET", f"{stack.adminer_url}/?{query}", opener=opener)
    if status != 200 or b"processing_runs" not in page:
        raise CheckFailed(f"after logging in, the table list answered {status} without the tables")
    return "adminer: logged in to PostgreSQL, lists processing_runs"


SWAGGER_URLS = re.compile(r"""(?:src|href)="([^"]*)"|url: '([^']*)'""")


def check_swagger(stack: Stack) -> str:
    """/docs of both services names only their own assets, and they are served."""
    probe = (
        "import re, sys, urllib.request as u\n"
        "base = sys.argv[1]\n"
        "page = u.urlopen(base + '/docs', timeout=10).read().decode()\n"
        f"urls = [a or b for a, b in re.findall({SWAGGER_URLS.pattern!r}, page)]\n"
        "assert urls and all(x.startswith('/') for x in urls), urls\n"
        "assert 'http://' not in page and 'https://' not in page\n"
        "print(sum(len(u.urlopen(base + x, timeout=10).read()) for x in urls))\n"
    )
    sizes = []
    for service, port in (("pipeline_service", 8000), ("model_service", 8001)):
        out = stack.run("exec", "-T", service, "python", "-c", probe, f"http://127.0.0.1:{port}")
        sizes.append(f"{service} {int(out.split()[-1]) // 1024} KiB")
    return "Swagger UI: /docs names no other host, its assets are served (" + ", ".join(sizes) + ")"


def check_exposure(stack: Stack) -> str:
    published: dict[str, list[str]] = {}
    for service, container in stack.by_service().items():
        for publisher in container.get("Publishers") or []:
            if publisher.get("PublishedPort"):
                address = f"{publisher['URL']}:{publisher['PublishedPort']}"
                published.setdefault(service, []).append(f"{address}->{publisher['TargetPort']}")
    expected = {
        "pipeline_service": [f"127.0.0.1:{stack.settings['PIPELINE_PORT']}->8000"],
        "adminer": [f"127.0.0.1:{stack.settings['ADMINER_PORT']}->8080"],
    }
    if published != expected:
        raise CheckFailed(f"published {published}, expected only {expected}")
    users = {
        s: stack.run("exec", "-T", s, "id", "-u").strip()
        for s in ("pipeline_service", "model_service")
    }
    if set(users.values()) != {SERVICE_UID}:
        raise CheckFailed(f"services run as uids {users}, expected {SERVICE_UID}")
    shown = ", ".join(f"{s} {a[0]}" for s, a in sorted(published.items()))
    return f"published on loopback only: {shown}; services run as uid {SERVICE_UID}"


CHANGED_STEPS = [{"type": t} for t in ("decode", "resize", "base64", "detect", "save")]


def check_change_pipeline(stack: Stack) -> str:
    url = stack.pipeline_url + "/pipelines/1"
    status, headers, body = call("GET", url)
    if status != 200:
        raise CheckFailed(f"GET /pipelines/1 answered {status}")
    current = json.loads(body)
    change = {
        "name": current["name"],
        "description": "changed by compose-check",
        "steps": CHANGED_STEPS,
    }
    refused, _, _ = call("PUT", url, change)
    token = stack.settings["PIPELINE_ADMIN_TOKEN"]
    auth = {"authorization": f"Bearer {token}", "if-match": headers.get("ETag", "*")}
    status, _, body = call("PUT", url, change, auth)
    if refused != 401 or status != 200:
        raise CheckFailed(f"PUT without token answered {refused} (expected 401), with it {status}")
    version = json.loads(body)["version"]
    stack.changed_version = version
    return f"PUT /pipelines/1 with the token of .env -> 200, version {version}; without it -> 401"


def check_quiet_logs(stack: Stack) -> str:
    out = stack.run("logs", "--no-log-prefix", "pipeline_service", "model_service")
    probes = [
        line
        for line in out.splitlines()
        if '"logger":"access"' in line and re.search(r'"path":"/(healthz|readyz|metrics)"', line)
    ]
    if probes:
        raise CheckFailed(f"{len(probes)} healthcheck lines in the log, e.g. {probes[0]}")
    replaced = [line for line in out.splitlines() if re.search(r"Child process \[\d+\] died", line)]
    if replaced:
        raise CheckFailed(f"uvicorn replaced a worker: {replaced[0]}")
    requests = len(re.findall(r'"path":"/process_image"', out))
    return (
        f"service logs: {requests} lines for /process_image, none for the healthchecks, "
        "no worker replaced"
    )


def check_restart_keeps_data(stack: Stack) -> str:
    stack.run("down")  # containers and network go; the volume stays
    stack.run("up", "--detach")
    stack.wait_until_healthy()
    status, _, body = call("GET", stack.pipeline_url + "/pipelines/1")
    pipeline = json.loads(body) if status == 200 else {}
    steps = [step["type"] for step in pipeline.get("steps", [])]
    expected_steps = [step["type"] for step in CHANGED_STEPS]
    runs = stack.psql("SELECT count(*) FROM processing_runs")
    kept = (
        pipeline.get("version") == stack.changed_version and steps == expected_steps and runs == "3"
    )
    if not kept:
        raise CheckFailed(f"after down + up: pipeline {pipeline}, {runs} runs")
    version = pipeline["version"]
    return f"down + up: pipeline 1 still at version {version} with its 5 steps, 3 runs kept"


def check_wrong_password(stack: Stack) -> str:
    """The trap of a password changed after the volume was made: migrate says what to do."""
    settings = stack.settings
    url = (
        f"postgresql://{settings['POSTGRES_USER']}:not-{settings['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{settings['POSTGRES_DB']}"
    )
    out = stack.run("run", "--rm", "--no-deps", "-e", f"DATABASE_URL={url}", "migrate", check=False)
    if "refused the password" not in out or "docs/docker.md" not in out:
        raise CheckFailed(f"migrate with a wrong password said: {out.strip()[-300:]}")
    return "a changed POSTGRES_PASSWORD: migrate stops with what to do (docs/docker.md)"


def check_stop(stack: Stack) -> str:
    started = time.monotonic()
    stack.run("stop")
    seconds = time.monotonic() - started
    codes = {
        name: c.get("ExitCode") for name, c in stack.by_service().items() if name in LONG_RUNNING
    }
    killed = {name: code for name, code in codes.items() if code == 137}
    if seconds > STOPPED_WITHIN_S or killed:
        raise CheckFailed(f"stop took {seconds:.1f} s; exit codes {codes}")
    return f"docker compose stop: {seconds:.1f} s, exit codes {codes}"


def check_down(stack: Stack) -> str:
    stack.run("down", "--volumes", "--remove-orphans")
    label = f"label=com.docker.compose.project={PROJECT}"
    left = {
        kind: subprocess.run(
            [
                "docker",
                kind,
                "ls",
                *(["--all"] if kind == "container" else []),
                "-q",
                "--filter",
                label,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        for kind in ("container", "volume", "network")
    }
    if any(left.values()):
        raise CheckFailed(f"left behind: {left}")
    return "down -v: no container, volume or network of the project is left"


CHECKS: list[tuple[str, Callable[[Stack], str]]] = [
    ("build", check_build),
    ("up", check_up),
    ("migrate", check_migrate),
    ("requests", check_requests),
    ("rows", check_rows),
    ("adminer", check_adminer),
    ("swagger", check_swagger),
    ("exposure", check_exposure),
    ("change", check_change_pipeline),
    ("logs", check_quiet_logs),
    ("restart", check_restart_keeps_data),
    ("password", check_wrong_password),
    ("stop", check_stop),
    ("down", check_down),
]


# ----------------------------------------------------------------------------- set-up


@contextmanager
def checkout_copy() -> Iterator[Path]:
    """The files a clone would have (plus new, not ignored ones), in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="compose-check-") as tmp:
        workdir = Path(tmp) / "checkout"
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.split(b"\0")
        for name in filter(None, (entry.decode() for entry in listed)):
            source = ROOT / name
            if source.is_file():
                target = workdir / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        yield workdir


def write_env(workdir: Path) -> dict[str, str]:
    """.env from .env.example: fresh secrets, free ports, two pipeline workers."""
    example = (workdir / ".env.example").read_text()
    replace = {
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "PIPELINE_ADMIN_TOKEN": secrets.token_hex(16),
        "PIPELINE_PORT": str(free_port()),
        "ADMINER_PORT": str(free_port()),
        "PIPELINE_WORKERS": "2",
    }
    settings: dict[str, str] = {}
    lines = []
    for line in example.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            value = replace.pop(key, value)
            settings[key] = value
            line = f"{key}={value}"
        lines.append(line)
    if replace:
        raise CheckFailed(f".env.example has no line for {sorted(replace)}")
    (workdir / ".env").write_text("\n".join(lines) + "\n")
    return settings


def preflight() -> str:
    for tool in ("docker", "curl", "git"):
        if shutil.which(tool) is None:
            raise CheckFailed(f"{tool} is not on PATH")
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        raise CheckFailed(f"`docker info` failed: {info.stderr.strip()[-300:]}")
    version = subprocess.run(
        ["docker", "compose", "version", "--short"], capture_output=True, text=True, check=False
    ).stdout.strip()
    numbers = [int(n) for n in re.findall(r"\d+", version)[:2]] or [0, 0]
    if version == "" or numbers < [2, 24]:
        raise CheckFailed(f"needs Docker Compose v2.24 or later, found {version or 'none'}")
    engine = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    buildkit = os.environ.get("DOCKER_BUILDKIT", "unset")
    return f"Docker Engine {engine}, Compose {version}, DOCKER_BUILDKIT={buildkit}"


def report(ok: bool, name: str, seconds: float, text: str) -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {seconds:6.1f} s  {name:<9} {text}", flush=True)


def main() -> int:
    LOG.parent.mkdir(exist_ok=True)
    LOG.write_text("")
    started = time.monotonic()
    try:
        report(True, "docker", 0.0, preflight())
    except CheckFailed as error:
        report(False, "docker", 0.0, str(error))
        return 1
    failed = False
    with checkout_copy() as workdir:
        try:
            stack = Stack(workdir, write_env(workdir))
        except CheckFailed as error:
            report(False, "env", 0.0, str(error))
            return 1
        stack.run("down", "--volumes", "--remove-orphans", check=False)  # a run that was killed
        try:
            for name, check in CHECKS:
                began = time.monotonic()
                try:
                    text = check(stack)
                except Exception as error:  # reported as a failed check, then cleaned up
                    reason = str(error) if isinstance(error, CheckFailed) else repr(error)
                    report(False, name, time.monotonic() - began, reason)
                    failed = True
                    stack.run("logs", "--no-color", check=False)  # into the log file
                    break
                report(True, name, time.monotonic() - began, text)
        finally:
            stack.run("down", "--volumes", "--remove-orphans", check=False)
    total = time.monotonic() - started
    verdict = "FAILED" if failed else "passed"
    print(f"compose-check {verdict} in {total:.0f} s (docker output: {LOG.relative_to(ROOT)})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
