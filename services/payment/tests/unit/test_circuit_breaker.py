"""The circuit breaker in front of the card gateway."""

from __future__ import annotations

from oms_payment.gateway.circuit import CircuitBreaker, CircuitState


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_circuit_opens_after_enough_failures_in_a_row_and_then_refuses_calls() -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_after_seconds=10, clock=Clock())
    for _ in range(2):
        assert breaker.allow()
        breaker.failed()
    assert breaker.state is CircuitState.CLOSED
    breaker.failed()
    assert breaker.state is CircuitState.OPEN
    assert not breaker.allow()


def test_a_success_resets_the_count_of_failures() -> None:
    breaker = CircuitBreaker(failure_threshold=3, clock=Clock())
    breaker.failed()
    breaker.failed()
    breaker.succeeded()
    breaker.failed()
    breaker.failed()
    assert breaker.state is CircuitState.CLOSED


def test_after_the_cool_down_one_trial_call_may_go_and_its_success_closes_the_circuit() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after_seconds=10, clock=clock)
    breaker.failed()
    clock.now = 10.0
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()  # only one trial at a time
    breaker.succeeded()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.allow()


def test_a_failed_trial_opens_the_circuit_for_another_cool_down() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=5, reset_after_seconds=10, clock=clock)
    for _ in range(5):
        breaker.failed()
    clock.now = 10.0
    assert breaker.allow()
    breaker.failed()
    assert breaker.state is CircuitState.OPEN
    clock.now = 19.0
    assert not breaker.allow()
