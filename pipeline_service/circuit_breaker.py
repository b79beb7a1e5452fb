"""A circuit breaker for one dependency, for asyncio code in one process.

closed: calls go through; `failure_threshold` failures in a row open the circuit.
open: calls fail fast with `CircuitOpen` (and how long to wait) for `reset_after_s`.
half-open: the first call after the pause is a trial; the others keep failing fast until
the trial ends. Its success closes the circuit, its failure opens it for another pause.

A call that ends neither in success nor failure (cancelled, or an outcome that says nothing
about the dependency's health) releases a trial slot without deciding anything.
"""

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitOpen(Exception):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"circuit open; retry after {retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int,
        reset_after_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold  # 0 disables the breaker
        self.reset_after_s = reset_after_s
        self._clock = clock
        self.state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False

    def retry_after_s(self) -> float:
        """Whole seconds (at least 1) until a call may go through again, for Retry-After."""
        if self.state == BreakerState.OPEN:
            left = self.reset_after_s - (self._clock() - self._opened_at)
            return float(max(1, math.ceil(left)))
        return 1.0

    def _allow(self) -> bool:
        """True if the call may proceed; True for a half-open trial too (see `_is_trial`)."""
        if self.state == BreakerState.CLOSED or self.failure_threshold == 0:
            return True
        if self.state == BreakerState.OPEN:
            if self._clock() - self._opened_at < self.reset_after_s:
                return False
            self.state = BreakerState.HALF_OPEN
        if self._trial_running:
            return False
        self._trial_running = True
        return True

    def _succeeded(self, trial: bool) -> None:
        if trial or self.state == BreakerState.CLOSED:
            self.state = BreakerState.CLOSED
            self._failures = 0
        if trial:
            self._trial_running = False

    def _failed(self, trial: bool) -> None:
        if trial:
            self._trial_running = False
            self._open()
        elif self.state == BreakerState.CLOSED:
            self._failures += 1
            if self.failure_threshold and self._failures >= self.failure_threshold:
                self._open()
        # a late failure of a call that started before the circuit opened changes nothing

    def _released(self, trial: bool) -> None:
        if trial:
            self._trial_running = False

    def _open(self) -> None:
        self.state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._failures = 0

    @contextmanager
    def call(self, is_failure: Callable[[BaseException], bool]) -> Iterator[None]:
        """Guard one call: raises CircuitOpen instead of running it while the circuit is open.

        An exception for which `is_failure` is true counts against the dependency; any other
        (a cancellation, say) neither counts nor closes the circuit. A normal exit is a success.
        """
        if not self._allow():
            raise CircuitOpen(self.retry_after_s())
        trial = self.state == BreakerState.HALF_OPEN
        try:
            yield
        except BaseException as error:
            if is_failure(error):
                self._failed(trial)
            else:
                self._released(trial)
            raise
        self._succeeded(trial)
