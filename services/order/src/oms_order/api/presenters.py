"""An order as the API shows it."""

from __future__ import annotations

import dataclasses

from oms_order.api.schemas import (
    AddressOut,
    FulfillmentOut,
    OrderItemOut,
    OrderPublic,
    ParcelItemOut,
)
from oms_order.domain.model import Order
from oms_order.domain.values import Address


def _address_out(address: Address | None) -> AddressOut | None:
    return AddressOut(**dataclasses.asdict(address)) if address is not None else None


def order_public(order: Order) -> OrderPublic:
    return OrderPublic(
        id=order.id,
        customer_id=order.customer_id,
        status=order.status.value,
        status_reason=order.status_reason,
        status_detail=order.status_detail,
        items=[
            OrderItemOut(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price)
            for line in order.lines
        ],
        total=order.total,
        currency=order.currency,
        shipping_address=AddressOut(**dataclasses.asdict(order.shipping_address)),
        pending_shipping_address=_address_out(order.pending_address),
        payment_id=order.payment_id,
        shipment_id=order.shipment_id,
        carrier=order.carrier,
        tracking_number=order.tracking_number,
        fulfillments=[
            FulfillmentOut(
                id=parcel.id,
                location=parcel.location,
                items=[ParcelItemOut(sku=sku, quantity=qty) for sku, qty in parcel.lines],
                status=parcel.status.value,
                shipment_id=parcel.shipment_id,
                tracking_number=parcel.tracking_number,
                carrier=parcel.carrier,
                dispatched_at=parcel.dispatched_at,
            )
            for parcel in order.fulfillments
        ],
        created_at=order.created_at,
        updated_at=order.updated_at,
    )
