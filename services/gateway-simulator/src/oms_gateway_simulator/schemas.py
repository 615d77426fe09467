"""Request bodies.

Strict on purpose: a real gateway would not coerce "100" or 100.0 into an
amount of money, so the simulator must not let a sloppy client pass either.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Amount = Annotated[int, Field(gt=0)]
Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class _StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AuthorizationRequest(_StrictModel):
    amount: Amount
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    token: Annotated[str, Field(min_length=1)]
    reference: Annotated[str, Field(min_length=1)]


class AmountRequest(_StrictModel):
    amount: Amount


class CaptureRequest(_StrictModel):
    # All that is still held when left out.
    amount: Amount | None = None
    # A final capture releases what is left of the hold; `false` keeps it for more
    # captures (each with its own idempotency key) or a void of the rest.
    final: bool = True


class VoidRequest(_StrictModel):
    pass


class ConfigUpdate(_StrictModel):
    latency_ms: Annotated[int, Field(ge=0)] | None = None
    failure_rate: Rate | None = None
    timeout_rate: Rate | None = None
    timeout_delay_seconds: Annotated[float, Field(gt=0.0)] | None = None
    refund_refused_token_active: bool | None = None
