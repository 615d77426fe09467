"""The capacity model against values worked out by hand, and the sliding window."""

from __future__ import annotations

import math

import pytest

from oms_runtime.capacity import (
    QueueSnapshot,
    QueueStatistics,
    erlang_c,
    mm1_queue_length,
    mmc_queue_length,
    mmc_waiting_time,
    queue_report,
    replicas_needed,
    utilisation,
)

# -- formulas ------------------------------------------------------------------------


def test_utilisation_is_arrival_rate_times_service_time_per_server() -> None:
    # lambda = 8/s, S = 0.1 s: 0.8 of one server, 0.4 of each of two.
    assert utilisation(8.0, 0.1) == pytest.approx(0.8)
    assert utilisation(8.0, 0.1, servers=2) == pytest.approx(0.4)


def test_the_mm1_queue_length_matches_the_hand_computed_value() -> None:
    # rho = 0.8: L_q = 0.8^2 / (1 - 0.8) = 0.64 / 0.2 = 3.2
    assert mm1_queue_length(0.8) == pytest.approx(3.2)
    # rho = 0.5: 0.25 / 0.5 = 0.5
    assert mm1_queue_length(0.5) == pytest.approx(0.5)
    assert mm1_queue_length(0.0) == 0.0


@pytest.mark.parametrize("rho", [1.0, 1.5])
def test_an_mm1_queue_at_or_over_full_utilisation_has_no_finite_length(rho: float) -> None:
    assert mm1_queue_length(rho) is None


def test_erlang_c_for_two_servers_matches_the_hand_computed_value() -> None:
    # c = 2, a = 1.6 (lambda = 16/s, S = 0.1 s), rho = 0.8:
    #   a^c / c! = 1.6^2 / 2 = 1.28;  divided by (1 - rho): 1.28 / 0.2 = 6.4
    #   sum_{k<c} a^k / k! = 1 + 1.6 = 2.6
    #   C = 6.4 / (2.6 + 6.4) = 6.4 / 9 = 32/45 = 0.7111...
    assert erlang_c(1.6, 2) == pytest.approx(32 / 45)


def test_erlang_c_for_three_servers_matches_the_hand_computed_value() -> None:
    # c = 3, a = 2, rho = 2/3:
    #   a^3 / 3! = 8/6 = 4/3;  divided by (1 - 2/3): 4
    #   1 + 2 + 2^2/2 = 5
    #   C = 4 / (5 + 4) = 4/9
    assert erlang_c(2.0, 3) == pytest.approx(4 / 9)


def test_erlang_c_for_one_server_is_its_utilisation() -> None:
    assert erlang_c(0.8, 1) == pytest.approx(0.8)


def test_erlang_c_is_zero_without_load_and_one_when_the_servers_cannot_keep_up() -> None:
    assert erlang_c(0.0, 3) == 0.0
    assert erlang_c(2.0, 2) == 1.0
    assert erlang_c(5.0, 2) == 1.0


def test_erlang_c_stays_finite_for_many_servers() -> None:
    # a^c / c! would overflow a float for c = 500; the recursion does not.
    value = erlang_c(450.0, 500)

    assert 0.0 < value < 1.0


def test_the_mmc_queue_length_and_wait_match_the_hand_computed_values() -> None:
    # c = 2, a = 1.6: L_q = C * rho / (1 - rho) = (32/45) * 0.8 / 0.2 = 128/45 = 2.844...
    assert mmc_queue_length(1.6, 2) == pytest.approx(128 / 45)
    # lambda = 16/s, S = 0.1 s: W_q = C * S / (c - a) = (32/45) * 0.1 / 0.4 = 8/45 s,
    # which is L_q / lambda = (128/45) / 16 as Little's law wants.
    assert mmc_waiting_time(16.0, 0.1, 2) == pytest.approx(8 / 45)


def test_the_mmc_queue_length_for_one_server_is_the_mm1_queue_length() -> None:
    assert mmc_queue_length(0.8, 1) == pytest.approx(3.2)


def test_an_mmc_queue_with_more_load_than_servers_has_no_finite_length_or_wait() -> None:
    assert mmc_queue_length(2.0, 2) is None
    assert mmc_queue_length(3.0, 2) is None
    assert mmc_waiting_time(20.0, 0.1, 2) is None


def test_replicas_needed_is_the_smallest_count_under_the_target_utilisation() -> None:
    # a = 1.6: 1.6 / 2 = 0.8 > 0.7, 1.6 / 3 = 0.53 <= 0.7.
    assert replicas_needed(16.0, 0.1, 0.7) == 3
    # a = 0.8: 0.8 / 1 > 0.7, 0.8 / 2 = 0.4.
    assert replicas_needed(8.0, 0.1, 0.7) == 2
    # a = 0.5 fits on one.
    assert replicas_needed(5.0, 0.1, 0.7) == 1


def test_replicas_needed_accepts_a_load_exactly_on_the_target() -> None:
    # 1.4 / 2 = 0.7 exactly, despite 1.4 / 0.7 being 2.0000000000000004 in floats.
    assert replicas_needed(14.0, 0.1, 0.7) == 2


def test_replicas_needed_never_counts_a_fully_busy_server_as_enough() -> None:
    # Target 1.0 with a = 2: two servers would be busy all the time (unstable).
    assert replicas_needed(20.0, 0.1, 1.0) == 3


def test_replicas_needed_is_one_without_load() -> None:
    assert replicas_needed(0.0, 0.1, 0.7) == 1
    assert replicas_needed(10.0, 0.0, 0.7) == 1


@pytest.mark.parametrize("target", [0.0, -0.5, 1.5])
def test_replicas_needed_refuses_a_target_outside_zero_to_one(target: float) -> None:
    with pytest.raises(ValueError):
        replicas_needed(10.0, 0.1, target)


def test_negative_or_nan_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        utilisation(-1.0, 0.1)
    with pytest.raises(ValueError):
        erlang_c(math.nan, 2)
    with pytest.raises(ValueError):
        erlang_c(1.0, 0)


# -- the sliding window --------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_window_reports_rate_and_service_time_of_sequential_messages() -> None:
    clock = FakeClock()
    stats = QueueStatistics(window_seconds=10.0, clock=clock)
    for second in range(1, 6):
        stats.record(0.1, now=float(second))

    snapshot = stats.snapshot(now=5.0)

    # Five messages in the five seconds since the tracker started.
    assert snapshot.window_seconds == pytest.approx(5.0)
    assert snapshot.messages == 5
    assert snapshot.arrival_rate == pytest.approx(1.0)
    assert snapshot.mean_service_time == pytest.approx(0.1)
    assert snapshot.mean_handling_time == pytest.approx(0.1)
    assert snapshot.busy_fraction == pytest.approx(0.1)


def test_the_window_forgets_messages_older_than_the_window() -> None:
    clock = FakeClock()
    stats = QueueStatistics(window_seconds=10.0, clock=clock)
    for second in range(1, 6):
        stats.record(0.1, now=float(second))
    for tick in range(40):  # 2/s from t = 20.25 to t = 39.75
        stats.record(0.2, now=20.25 + tick / 2)

    snapshot = stats.snapshot(now=40.0)

    assert snapshot.window_seconds == pytest.approx(10.0)
    assert snapshot.messages == 20
    assert snapshot.arrival_rate == pytest.approx(2.0)
    assert snapshot.mean_service_time == pytest.approx(0.2)
    assert snapshot.busy_fraction == pytest.approx(0.4)


def test_an_idle_window_reports_nothing_and_divides_by_nothing() -> None:
    clock = FakeClock()
    stats = QueueStatistics(window_seconds=10.0, clock=clock)
    stats.record(0.5, now=1.0)

    assert stats.snapshot(now=100.0) == QueueSnapshot(
        window_seconds=10.0,
        messages=0,
        arrival_rate=0.0,
        mean_service_time=0.0,
        mean_handling_time=0.0,
        busy_fraction=0.0,
    )
    assert QueueStatistics(clock=clock).snapshot().arrival_rate == 0.0


def test_overlapping_messages_count_their_busy_time_once() -> None:
    clock = FakeClock()
    stats = QueueStatistics(window_seconds=10.0, clock=clock)
    stats.record(1.0, now=2.0)  # busy [1, 2]
    stats.record(0.5, now=2.2)  # [1.7, 2.2] overlaps: busy [1, 2.2]

    snapshot = stats.snapshot(now=4.0)

    assert snapshot.mean_service_time == pytest.approx(1.2 / 2)
    assert snapshot.mean_handling_time == pytest.approx(0.75)
    assert snapshot.busy_fraction == pytest.approx(1.2 / 4)


def test_a_long_message_fills_the_gaps_between_shorter_ones_it_overlapped() -> None:
    clock = FakeClock()
    stats = QueueStatistics(window_seconds=10.0, clock=clock)
    stats.record(1.0, now=2.0)  # [1, 2]
    stats.record(1.0, now=4.0)  # [3, 4]
    stats.record(5.0, now=5.0)  # [0, 5] covers both and the gaps

    snapshot = stats.snapshot(now=5.0)

    assert snapshot.busy_fraction == pytest.approx(1.0)
    assert snapshot.mean_service_time == pytest.approx(5.0 / 3)


def test_a_busy_period_is_clipped_to_the_window() -> None:
    clock = FakeClock()
    stats = QueueStatistics(window_seconds=10.0, clock=clock)
    stats.record(8.0, now=15.0)  # busy [7, 15]; the window at t=20 starts at 10

    snapshot = stats.snapshot(now=20.0)

    assert snapshot.busy_fraction == pytest.approx(0.5)


def test_a_shorter_window_can_be_asked_for_but_not_a_longer_one() -> None:
    clock = FakeClock()
    stats = QueueStatistics(window_seconds=10.0, clock=clock)
    for tick in range(1, 21):  # 1/s until t = 19.5, then 4/s from t = 20.25 to 25
        stats.record(0.1, now=tick - 0.5)
    for tick in range(1, 21):
        stats.record(0.1, now=20.0 + tick / 4)

    assert stats.snapshot(now=25.0, window_seconds=5.0).arrival_rate == pytest.approx(4.0)
    assert stats.snapshot(now=25.0, window_seconds=60.0).window_seconds == pytest.approx(10.0)


def test_memory_stays_bounded_by_the_window() -> None:
    clock = FakeClock()
    stats = QueueStatistics(window_seconds=10.0, clock=clock)
    for tick in range(100_000):  # 1000/s for 100 s, never overlapping
        stats.record(0.0001, now=tick / 1000)

    assert len(stats._buckets) <= 11
    assert len(stats._busy) <= 10_001


# -- the report row ------------------------------------------------------------------


def snapshot_of(arrival_rate: float, service_time: float) -> QueueSnapshot:
    return QueueSnapshot(
        window_seconds=60.0,
        messages=round(arrival_rate * 60),
        arrival_rate=arrival_rate,
        mean_service_time=service_time,
        mean_handling_time=service_time,
        busy_fraction=arrival_rate * service_time,
    )


def test_a_report_row_puts_the_predicted_and_observed_queue_side_by_side() -> None:
    row = queue_report("oms.order", snapshot_of(8.0, 0.1), observed_depth=4, consumers=1)

    assert row.queue == "oms.order"
    assert row.arrival_rate == pytest.approx(8.0)
    assert row.utilisation == pytest.approx(0.8)
    assert row.stable is True
    assert row.predicted_queue_length_mm1 == pytest.approx(3.2)
    assert row.predicted_queue_length == pytest.approx(3.2)
    assert row.probability_of_waiting == pytest.approx(0.8)
    # W_q = L_q / lambda = 3.2 / 8
    assert row.predicted_wait_seconds == pytest.approx(0.4)
    assert row.observed_depth == 4
    assert row.replicas_needed == 2


def test_a_report_row_scales_one_consumers_rate_to_the_whole_queue() -> None:
    # Two consumers each handling 8/s: the queue gets 16/s, a = 1.6 over c = 2.
    row = queue_report("oms.order", snapshot_of(8.0, 0.1), observed_depth=0, consumers=2)

    assert row.arrival_rate == pytest.approx(16.0)
    assert row.utilisation == pytest.approx(0.8)
    assert row.predicted_queue_length_mm1 is None  # 1.6 erlangs on one server
    assert row.predicted_queue_length == pytest.approx(128 / 45)
    assert row.probability_of_waiting == pytest.approx(32 / 45)
    assert row.replicas_needed == 3


def test_a_report_row_of_an_overloaded_queue_says_unstable_and_still_sizes_it() -> None:
    row = queue_report(
        "oms.order", snapshot_of(12.0, 0.1), observed_depth=500, consumers=1, target_utilisation=0.5
    )

    assert row.utilisation == pytest.approx(1.2)
    assert row.stable is False
    assert row.predicted_queue_length is None
    assert row.predicted_wait_seconds is None
    assert row.probability_of_waiting == 1.0
    assert row.replicas_needed == 3  # 1.2 / 3 = 0.4 <= 0.5
    assert row.as_dict()["predicted_queue_length"] is None


def test_a_report_row_of_a_queue_without_consumers_uses_the_one_that_measured() -> None:
    row = queue_report("oms.order", snapshot_of(5.0, 0.1), observed_depth=None, consumers=0)

    assert row.consumers == 0
    assert row.utilisation == pytest.approx(0.5)
    assert row.observed_depth is None
