"""The circuit breaker on its own (pipeline_service/circuit_breaker.py), on a clock of the
test's: opens after consecutive failures, refuses with the time left, half-opens for one trial."""

import pytest

from pipeline_service.circuit_breaker import BreakerState, CircuitBreaker, CircuitOpen


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fail(breaker: CircuitBreaker) -> None:
    with pytest.raises(RuntimeError), breaker.call(lambda e: isinstance(e, RuntimeError)):
        raise RuntimeError("down")


def succeed(breaker: CircuitBreaker) -> None:
    with breaker.call(lambda e: True):
        pass


def test_breaker_opens_after_consecutive_failures_and_half_opens_after_the_pause() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=10, clock=clock)
    fail(breaker)
    fail(breaker)
    succeed(breaker)  # a success in between resets the count
    fail(breaker)
    fail(breaker)
    assert breaker.state == BreakerState.CLOSED
    fail(breaker)
    assert breaker.state == BreakerState.OPEN

    clock.now += 4
    with pytest.raises(CircuitOpen) as refused, breaker.call(lambda e: True):
        pass
    assert refused.value.retry_after_s == 6

    clock.now += 6  # the pause is over: one trial call goes through, others still wait
    with breaker.call(lambda e: True):
        assert breaker.state == BreakerState.HALF_OPEN
        with pytest.raises(CircuitOpen), breaker.call(lambda e: True):
            pass
    assert breaker.state == BreakerState.CLOSED


def test_a_failed_trial_opens_again_and_a_neutral_one_frees_the_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=5, clock=clock)
    fail(breaker)
    clock.now += 5
    fail(breaker)  # the trial
    assert breaker.state == BreakerState.OPEN
    assert breaker.retry_after_s() == 5

    clock.now += 5
    with pytest.raises(ValueError), breaker.call(lambda e: isinstance(e, RuntimeError)):
        raise ValueError("says nothing about the dependency")
    assert breaker.state == BreakerState.HALF_OPEN
    succeed(breaker)  # the slot was freed, so this call is the next trial
    assert breaker.state == BreakerState.CLOSED


def test_threshold_zero_never_opens() -> None:
    breaker = CircuitBreaker(failure_threshold=0, reset_after_s=5)
    for _ in range(50):
        fail(breaker)
    assert breaker.state == BreakerState.CLOSED
