"""SIGINT, SIGTERM and SIGHUP (a closed terminal) all mean: stop the stack, cleanly."""

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class ShutdownRequested(BaseException):  # like KeyboardInterrupt: not an error
    """Raised in the main thread when a stop signal arrives."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SignalGate:
    """Turns stop signals into ShutdownRequested, except while held.

    While held (around spawning a child, and during cleanup) a signal is only remembered:
    raising in the middle of Popen could lose track of a child that did start. It is raised
    once at most: a second Ctrl-C must not interrupt the cleanup the first one started.
    """

    def __init__(self) -> None:
        self._held = 0
        self._pending: int | None = None
        self._raised = False
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def hold_forever(self) -> None:
        """From now on signals are ignored (cleanup is under way and bounded in time)."""
        self._held += 1

    @contextmanager
    def held(self) -> Iterator[None]:
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
        if not self._held and self._pending is not None:
            self._raise(self._pending)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self._pending = signum
        if not self._held:
            self._raise(signum)

    def _raise(self, signum: int) -> None:
        if not self._raised:
            self._raised = True
            raise ShutdownRequested(signum)


class SignalFlag:
    """Remembers that a signal (e.g. SIGUSR1: restart the replicas) arrived, to be acted on by
    the main loop, outside the handler."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self._raised = False
        self._previous: object = None

    def install(self) -> None:
        self._previous = signal.signal(self.signum, self._handle)

    def restore(self) -> None:
        signal.signal(self.signum, self._previous)  # type: ignore[arg-type]

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        self._raised = True

    def take(self) -> bool:
        """Whether it arrived since the last call."""
        raised, self._raised = self._raised, False
        return raised
