"""A shipment's dispatch and its carrier tracking timeline (late, repeated, out of order)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from oms_shipping.domain.model import (
    Address,
    Created,
    Delivered,
    Dispatched,
    ImplausibleEventTime,
    Line,
    NotDispatched,
    Shipment,
    ShipmentStatus,
    ShippingError,
    TrackingEvent,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
ADDRESS = Address(name="Ada", line1="1 Main St", city="Berlin", postal_code="10115", country="DE")


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


# When the events are received: after every carrier event of these tests.
LATER = at(24)


def new_shipment() -> Shipment:
    return Shipment.create(
        shipment_id="shp-1", order_id="order-1", lines=[Line("MUG", 2)], address=ADDRESS
    )


def dispatched_shipment() -> Shipment:
    shipment = new_shipment()
    shipment.dispatch(carrier="DHL", tracking_number="TRK-1", now=T0)
    return shipment


def tracking(status: ShipmentStatus, hours: float, location: str | None = None) -> TrackingEvent:
    return TrackingEvent(status=status, location=location, occurred_at=at(hours))


# -- creation and dispatch -------------------------------------------------------------


def test_creating_a_shipment_announces_it_as_created() -> None:
    shipment = new_shipment()

    assert shipment.status is ShipmentStatus.CREATED
    assert shipment.events == [Created("shp-1", "order-1")]


def test_dispatching_records_the_carrier_tracking_number_and_time_and_announces_it() -> None:
    shipment = new_shipment()

    shipment.dispatch(carrier="DHL", tracking_number="TRK-1", now=T0)

    assert shipment.status is ShipmentStatus.DISPATCHED
    assert (shipment.carrier, shipment.tracking_number) == ("DHL", "TRK-1")
    assert shipment.dispatched_at == T0
    assert shipment.events[-1] == Dispatched("shp-1", "order-1", "DHL", "TRK-1")


def test_dispatching_twice_keeps_the_first_dispatch_and_announces_nothing_new() -> None:
    shipment = dispatched_shipment()

    shipment.dispatch(carrier="UPS", tracking_number="TRK-2", now=at(5))

    assert (shipment.carrier, shipment.tracking_number) == ("DHL", "TRK-1")
    assert shipment.dispatched_at == T0
    assert shipment.events == [
        Created("shp-1", "order-1"),
        Dispatched("shp-1", "order-1", "DHL", "TRK-1"),
    ]


def test_dispatching_a_shipment_already_in_transit_changes_nothing() -> None:
    shipment = dispatched_shipment()
    shipment.record_tracking(tracking(ShipmentStatus.IN_TRANSIT, 1), seen_before=False, now=LATER)

    shipment.dispatch(carrier="UPS", tracking_number="TRK-2", now=at(5))

    assert shipment.status is ShipmentStatus.IN_TRANSIT
    assert shipment.carrier == "DHL"
    assert len(shipment.events) == 2


# -- tracking --------------------------------------------------------------------------


def test_a_tracking_event_before_dispatch_is_refused_as_not_dispatched() -> None:
    shipment = new_shipment()

    with pytest.raises(NotDispatched):
        shipment.record_tracking(
            tracking(ShipmentStatus.IN_TRANSIT, 1), seen_before=False, now=LATER
        )

    assert shipment.status is ShipmentStatus.CREATED
    assert shipment.new_tracking_events == []


@pytest.mark.parametrize("status", [ShipmentStatus.DISPATCHED, ShipmentStatus.CREATED])
def test_a_status_a_carrier_cannot_report_is_refused(status: ShipmentStatus) -> None:
    shipment = dispatched_shipment()

    with pytest.raises(ShippingError, match="not a carrier tracking status") as raised:
        shipment.record_tracking(tracking(status, 1), seen_before=False, now=LATER)

    assert type(raised.value) is ShippingError
    assert shipment.new_tracking_events == []


def test_a_newer_tracking_event_moves_the_shipment_status_forward() -> None:
    shipment = dispatched_shipment()

    shipment.record_tracking(tracking(ShipmentStatus.IN_TRANSIT, 1), seen_before=False, now=LATER)
    shipment.record_tracking(
        tracking(ShipmentStatus.OUT_FOR_DELIVERY, 2), seen_before=False, now=LATER
    )

    assert shipment.status is ShipmentStatus.OUT_FOR_DELIVERY
    assert shipment.last_event_at == at(2)


def test_every_new_tracking_event_is_kept_on_the_timeline() -> None:
    shipment = dispatched_shipment()
    first = tracking(ShipmentStatus.IN_TRANSIT, 1, "Hub A")
    second = tracking(ShipmentStatus.IN_TRANSIT, 2, "Hub B")

    shipment.record_tracking(first, seen_before=False, now=LATER)
    shipment.record_tracking(second, seen_before=False, now=LATER)

    assert shipment.new_tracking_events == [first, second]


def test_an_older_tracking_event_is_kept_on_the_timeline_but_does_not_move_status_back() -> None:
    shipment = dispatched_shipment()
    shipment.record_tracking(
        tracking(ShipmentStatus.OUT_FOR_DELIVERY, 3), seen_before=False, now=LATER
    )
    late = tracking(ShipmentStatus.IN_TRANSIT, 1)

    shipment.record_tracking(late, seen_before=False, now=LATER)

    assert shipment.status is ShipmentStatus.OUT_FOR_DELIVERY
    assert shipment.last_event_at == at(3)
    assert shipment.new_tracking_events[-1] == late


def test_a_tracking_event_seen_before_changes_nothing() -> None:
    shipment = dispatched_shipment()
    event = tracking(ShipmentStatus.IN_TRANSIT, 1)

    shipment.record_tracking(event, seen_before=True, now=LATER)

    assert shipment.status is ShipmentStatus.DISPATCHED
    assert shipment.last_event_at is None
    assert shipment.new_tracking_events == []


def test_a_carrier_event_stamped_minutes_before_our_dispatch_time_still_moves_the_status() -> None:
    # The carrier's clock may lag ours a little; carrier events are compared with each other.
    shipment = dispatched_shipment()

    shipment.record_tracking(
        tracking(ShipmentStatus.IN_TRANSIT, -4 / 60), seen_before=False, now=LATER
    )

    assert shipment.status is ShipmentStatus.IN_TRANSIT


@pytest.mark.parametrize(
    "occurred_at",
    [
        datetime(1, 1, 1, tzinfo=UTC),
        at(-1),
        datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
        LATER + timedelta(minutes=6),
    ],
    ids=["year-1", "an-hour-before-dispatch", "year-9999", "after-now"],
)
def test_a_carrier_event_dated_before_dispatch_or_in_the_future_is_refused(
    occurred_at: datetime,
) -> None:
    shipment = dispatched_shipment()
    event = TrackingEvent(status=ShipmentStatus.DELIVERED, location=None, occurred_at=occurred_at)

    with pytest.raises(ImplausibleEventTime):
        shipment.record_tracking(event, seen_before=False, now=LATER)

    assert shipment.status is ShipmentStatus.DISPATCHED
    assert shipment.new_tracking_events == []
    assert shipment.events == [
        Created("shp-1", "order-1"),
        Dispatched("shp-1", "order-1", "DHL", "TRK-1"),
    ]


def test_a_redelivered_delivery_event_seen_before_does_not_deliver() -> None:
    shipment = dispatched_shipment()

    shipment.record_tracking(tracking(ShipmentStatus.DELIVERED, 4), seen_before=True, now=LATER)

    assert shipment.status is ShipmentStatus.DISPATCHED
    assert shipment.delivered_at is None
    assert not any(isinstance(e, Delivered) for e in shipment.events)


# -- delivery --------------------------------------------------------------------------


def test_a_delivery_event_delivers_the_shipment_and_announces_it() -> None:
    shipment = dispatched_shipment()

    shipment.record_tracking(tracking(ShipmentStatus.DELIVERED, 4), seen_before=False, now=LATER)

    assert shipment.status is ShipmentStatus.DELIVERED
    assert shipment.delivered_at == at(4)
    assert shipment.events[-1] == Delivered("shp-1", "order-1", "DHL", "TRK-1", at(4))


def test_a_second_delivery_event_announces_nothing_and_keeps_the_first_delivery_time() -> None:
    shipment = dispatched_shipment()
    shipment.record_tracking(tracking(ShipmentStatus.DELIVERED, 4), seen_before=False, now=LATER)

    shipment.record_tracking(tracking(ShipmentStatus.DELIVERED, 5), seen_before=False, now=LATER)

    assert shipment.delivered_at == at(4)
    assert sum(isinstance(e, Delivered) for e in shipment.events) == 1


def test_nothing_moves_the_status_after_delivery_even_newer_events() -> None:
    shipment = dispatched_shipment()
    shipment.record_tracking(tracking(ShipmentStatus.DELIVERED, 4), seen_before=False, now=LATER)
    newer = tracking(ShipmentStatus.EXCEPTION, 6)

    shipment.record_tracking(newer, seen_before=False, now=LATER)

    assert shipment.status is ShipmentStatus.DELIVERED
    assert shipment.new_tracking_events[-1] == newer


def test_a_delivery_event_older_than_the_last_in_transit_still_delivers() -> None:
    shipment = dispatched_shipment()
    shipment.record_tracking(tracking(ShipmentStatus.IN_TRANSIT, 5), seen_before=False, now=LATER)

    shipment.record_tracking(tracking(ShipmentStatus.DELIVERED, 4), seen_before=False, now=LATER)

    assert shipment.status is ShipmentStatus.DELIVERED
    assert shipment.delivered_at == at(4)
    assert shipment.events[-1] == Delivered("shp-1", "order-1", "DHL", "TRK-1", at(4))


# -- repeated create requests ----------------------------------------------------------


def test_a_repeated_create_request_for_an_undispatched_shipment_re_announces_created() -> None:
    shipment = new_shipment()
    shipment.events.clear()

    shipment.repeat_notices()

    assert shipment.events == [Created("shp-1", "order-1")]


def test_a_repeated_create_request_for_a_dispatched_shipment_re_announces_both() -> None:
    shipment = dispatched_shipment()
    shipment.events.clear()

    shipment.repeat_notices()

    assert shipment.events == [
        Created("shp-1", "order-1"),
        Dispatched("shp-1", "order-1", "DHL", "TRK-1"),
    ]
