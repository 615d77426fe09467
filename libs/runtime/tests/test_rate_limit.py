"""The per-customer token bucket behind 429 answers."""

from __future__ import annotations

from oms_runtime.ratelimit import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_the_caller_must_wait_for_a_token() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate_per_second=2, burst=3, clock=clock)
    assert [buckets.take("alice") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("alice") == 0.5
    clock.now = 0.5
    assert buckets.take("alice") == 0


def test_callers_have_separate_buckets() -> None:
    buckets = TokenBuckets(rate_per_second=1, burst=1, clock=Clock())
    assert buckets.take("alice") == 0
    assert buckets.take("alice") > 0
    assert buckets.take("bob") == 0


def test_tokens_never_pile_up_beyond_the_burst() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate_per_second=1, burst=2, clock=clock)
    clock.now = 1000.0
    assert [buckets.take("alice") > 0 for _ in range(3)] == [False, False, True]


def test_the_least_recent_callers_are_forgotten_past_the_limit() -> None:
    buckets = TokenBuckets(rate_per_second=1, burst=1, clock=Clock(), max_callers=2)
    buckets.take("a")
    buckets.take("b")
    buckets.take("c")
    assert buckets.take("a") == 0  # "a" was forgotten, so it starts with a full bucket
