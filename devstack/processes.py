"""Child processes in their own process group: stopping the group stops everything the child
started (uvicorn's worker processes included), and the terminal's Ctrl-C reaches only the
launcher, which then stops the children in order."""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from devstack.signals import SignalGate

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _child_setup(parent_pid: int) -> Callable[[], None]:
    def setup() -> None:
        os.setpgid(0, 0)
        if _libc is not None:
            # If the launcher is killed outright (SIGKILL), its children still get SIGTERM.
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent_pid:  # the launcher died before prctl took effect
                os._exit(1)

    return setup


class GroupProcess:
    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], cwd: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, gate: SignalGate) -> None:
        with gate.held():
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                # The launcher's stdout carries only its own lines (the "ready" line among them).
                stdout=sys.stderr.fileno(),
                preexec_fn=_child_setup(os.getpid()),
            )

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def wait(self) -> int:
        assert self.process is not None
        return self.process.wait()

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM to the whole group, SIGKILL what is left after `grace_s`; returns when the
        group is empty (or, at worst, after the SIGKILL grace)."""
        if self.process is None:
            return
        group = self.process.pid  # the child leads its own group
        _signal_group(group, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        if not _wait_group_gone(self.process, group, deadline):
            _signal_group(group, signal.SIGKILL)
            _wait_group_gone(self.process, group, time.monotonic() + 5.0)


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signum)


def _wait_group_gone(process: subprocess.Popen[bytes], group: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        process.poll()  # reap the leader, so it does not linger as a zombie of ours
        if process.returncode is not None and not _group_alive(group):
            return True
        time.sleep(0.05)
    return False


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
