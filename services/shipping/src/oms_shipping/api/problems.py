"""How each refusal of the shipping service answers over HTTP: one table, by the
error's code, whatever route raised it."""

from __future__ import annotations

from oms_runtime.problems import ErrorProblems, ProblemType
from oms_shipping.domain.model import (
    ImplausibleEventTime,
    NotCreatedYet,
    NotDispatchable,
    NotDispatched,
    NotFailable,
    ShippingError,
)
from oms_shipping.domain.returns import InvalidReceipt, ReturnAlreadyReceived, ReturnIsCancelled
from oms_shipping.handlers.returns import ReturnNotFound
from oms_shipping.handlers.shipments import NotThisParcel, ShipmentNotFound

PROBLEMS = ErrorProblems(
    errors=(ShippingError,),
    by_code={
        ShipmentNotFound.code: ProblemType(404, "shipment-not-found", "Shipment not found"),
        NotDispatchable.code: ProblemType(409, "shipment-not-dispatchable", "Cannot dispatch"),
        NotFailable.code: ProblemType(409, "shipment-not-failable", "Cannot fail"),
        NotDispatched.code: ProblemType(409, "shipment-not-dispatched", "Not dispatched yet"),
        NotCreatedYet.code: ProblemType(409, "shipment-not-created-yet", "Not created yet"),
        # A signed event for another parcel is as good as unsigned for this one.
        NotThisParcel.code: ProblemType(
            401, "bad-signature", "Not this parcel's event", field="tracking_number"
        ),
        ImplausibleEventTime.code: ProblemType(
            422, "validation-error", "Implausible event time", field="occurred_at"
        ),
        ReturnNotFound.code: ProblemType(404, "return-not-found", "Return not found"),
        ReturnAlreadyReceived.code: ProblemType(
            409, "return-already-received", "The return was received already"
        ),
        ReturnIsCancelled.code: ProblemType(409, "return-cancelled", "The return was cancelled"),
        # The same type as a request the schema refuses; the error names the fields.
        InvalidReceipt.code: ProblemType(422, "validation-error", "The receipt is not valid"),
        # (A status no carrier reports; the webhook's schema refuses it first.)
        ShippingError.code: ProblemType(409, "shipment-conflict", "Shipment conflict"),
    },
)
