"""N pipeline-service replicas, each its own process group and port, behind HAProxy.

- start: every replica, each until its /readyz answers 200, then HAProxy, until it reports
  every replica UP.
- restart one replica without failing a request (`restart`; `rolling_restart` does all, one
  at a time): drain it through HAProxy's runtime API (no new requests), wait until none is in
  flight on it, SIGTERM (uvicorn finishes what it has), start it again, wait for /readyz,
  put it back (`ready`), wait until HAProxy's checks see it UP. docs/decisions/ (drain).
- a replica that dies (a crash, SIGKILL) is taken out by HAProxy at once (refused
  connections) or within its checks; `replace_exited` starts it again.
"""

import time
from collections.abc import Callable, Mapping
from pathlib import Path

from devstack.errors import StackError
from devstack.haproxy import HAProxy, Replica
from devstack.probe import answers
from devstack.processes import GroupProcess
from devstack.signals import SignalGate

Say = Callable[[str], None]
READY_PATH = "/readyz"


def replica_names(count: int) -> list[str]:
    return [f"pipeline-{index}" for index in range(1, count + 1)]


class Fleet:
    def __init__(
        self,
        replicas: list[Replica],
        argv_for: Callable[[Replica], list[str]],
        env: Mapping[str, str],
        haproxy: HAProxy,
        cwd: Path,
        startup_timeout_s: float = 60.0,
        drain_timeout_s: float = 20.0,
    ) -> None:
        self.replicas = {replica.name: replica for replica in replicas}
        self.haproxy = haproxy
        self.startup_timeout_s = startup_timeout_s
        self.drain_timeout_s = drain_timeout_s
        self.processes = {
            r.name: GroupProcess(r.name, argv_for(r), {**env, "REPLICA_NAME": r.name}, cwd)
            for r in replicas
        }

    def url(self, name: str) -> str:
        replica = self.replicas[name]
        return f"http://{replica.host}:{replica.port}"

    def start(self, gate: SignalGate) -> None:
        for process in self.processes.values():
            process.start(gate)
        for name in self.processes:
            self.wait_ready(name)
        self.haproxy.start(gate)
        for name in self.processes:
            self.wait_in_rotation(name)

    def stop(self) -> None:
        """HAProxy first (no new requests; answers in flight finish), then the replicas."""
        self.haproxy.stop()
        for process in self.processes.values():
            process.stop()

    def restart(self, name: str, gate: SignalGate, say: Say) -> None:
        say(f"restarting {name}: draining it")
        self.haproxy.set_state(name, "drain")
        try:
            self.haproxy.wait_for(name, "DRAIN", self.drain_timeout_s)
            self.processes[name].stop()
            self.processes[name].start(gate)
            self.wait_ready(name)
        finally:  # back in HAProxy's hands either way: its checks decide
            self.haproxy.set_state(name, "ready")
        self.wait_in_rotation(name)
        say(f"{name} is back in rotation")

    def rolling_restart(self, gate: SignalGate, say: Say) -> None:
        for name in self.processes:
            self.restart(name, gate, say)

    def replace_exited(self, gate: SignalGate, say: Say) -> None:
        """Start again every replica whose process has ended (HAProxy took it out)."""
        for name, process in self.processes.items():
            code = process.exit_code()
            if code is not None:
                say(f"{name} exited (exit code {code}); starting it again")
                process.stop()  # whatever is left of its group
                process.start(gate)

    def wait_ready(self, name: str) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        process = self.processes[name]
        while not answers(self.url(name) + READY_PATH):
            code = process.exit_code()
            if code is not None:
                raise StackError(f"{name} exited during startup (exit code {code}); see above")
            if time.monotonic() > deadline:
                raise StackError(f"{name} was not ready within {self.startup_timeout_s:g} s")
            time.sleep(0.1)

    def wait_in_rotation(self, name: str) -> None:
        self.haproxy.wait_for(name, "UP", self.startup_timeout_s)
