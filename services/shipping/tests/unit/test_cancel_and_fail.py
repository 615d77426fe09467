"""Stopping a shipment, and shipments that fail."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from oms_shipping.domain.model import (
    Address,
    Cancelled,
    Created,
    Dispatched,
    Failed,
    Line,
    NotDispatched,
    NotFailable,
    Shipment,
    ShipmentStatus,
    TrackingEvent,
)

NOW = datetime(2026, 11, 25, 9, tzinfo=UTC)


def created() -> Shipment:
    shipment = Shipment.create(
        shipment_id="s-1",
        order_id="o-1",
        lines=[Line("A", 1)],
        address=Address("Ada", "1 Main St", "Berlin", "10115", "DE"),
    )
    shipment.events.clear()
    return shipment


def dispatched() -> Shipment:
    shipment = created()
    shipment.dispatch(carrier="simpost", tracking_number="SIM1", now=NOW)
    shipment.events.clear()
    return shipment


def test_a_shipment_not_yet_dispatched_can_be_cancelled() -> None:
    shipment = created()
    shipment.cancel()
    assert shipment.status is ShipmentStatus.CANCELLED
    assert shipment.events == [Cancelled("s-1", "o-1")]


def test_cancelling_a_dispatched_shipment_answers_that_it_left() -> None:
    shipment = dispatched()
    shipment.cancel()
    assert shipment.status is ShipmentStatus.DISPATCHED
    assert shipment.events == [Created("s-1", "o-1"), Dispatched("s-1", "o-1", "simpost", "SIM1")]


def test_a_cancellation_before_the_shipment_exists_is_remembered() -> None:
    tombstone = Shipment.cancelled_before_creation(shipment_id="s-9", order_id="o-1")
    assert tombstone.status is ShipmentStatus.CANCELLED
    assert tombstone.address is None
    tombstone.events.clear()
    # The late creation request gets "cancelled" back, not a new shipment.
    tombstone.repeat_notices()
    assert tombstone.events == [Cancelled("s-9", "o-1")]


def test_a_cancelled_shipment_cannot_be_dispatched_or_tracked() -> None:
    shipment = created()
    shipment.cancel()
    with pytest.raises(NotDispatched):
        shipment.record_tracking(
            TrackingEvent(ShipmentStatus.IN_TRANSIT, None, NOW), seen_before=False, now=NOW
        )


def test_a_lost_parcel_fails_and_says_why() -> None:
    shipment = dispatched()
    shipment.fail("lost_in_transit")
    assert shipment.status is ShipmentStatus.FAILED
    assert shipment.events == [Failed("s-1", "o-1", "lost_in_transit")]
    shipment.events.clear()
    shipment.fail("lost_in_transit")
    assert shipment.events == []


def test_a_failed_shipment_stays_failed_whatever_the_carrier_reports_later() -> None:
    shipment = dispatched()
    shipment.fail("lost_in_transit")
    shipment.record_tracking(
        TrackingEvent(ShipmentStatus.IN_TRANSIT, "Hub", NOW), seen_before=False, now=NOW
    )
    assert shipment.status is ShipmentStatus.FAILED
    assert len(shipment.new_tracking_events) == 1


@pytest.mark.parametrize("status", [ShipmentStatus.DELIVERED, ShipmentStatus.CANCELLED])
def test_a_delivered_or_cancelled_shipment_cannot_fail(status: ShipmentStatus) -> None:
    shipment = dispatched()
    shipment.status = status
    with pytest.raises(NotFailable):
        shipment.fail("late")


def test_a_repeated_request_for_a_failed_shipment_repeats_the_failure() -> None:
    shipment = created()
    shipment.fail("destination_not_served")
    shipment.events.clear()
    shipment.repeat_notices()
    assert shipment.events == [
        Created("s-1", "o-1"),
        Failed("s-1", "o-1", "destination_not_served"),
    ]
