"""Failed sign-ins slow down, then lock, an account; and too many from one client
address block that address for a while. Plain rules over the recorded failures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class LockoutPolicy:
    window: timedelta
    throttle_base: timedelta
    throttle_max: timedelta
    lockout_threshold: int
    lockout: timedelta
    address_limit: int


@dataclass(frozen=True)
class Verdict:
    """Whether a sign-in attempt may be checked at all, and if not, for how long not."""

    allowed: bool
    retry_after: timedelta = timedelta(0)
    reason: str = ""


ALLOWED = Verdict(allowed=True)


def assess(
    policy: LockoutPolicy,
    account_failures: Sequence[datetime],
    address_failures: int,
    now: datetime,
) -> Verdict:
    """`account_failures`: times of the account's failed sign-ins within the window
    (since its last success); `address_failures`: how many the client address had
    within the window, whatever the account."""
    if address_failures >= policy.address_limit:
        return Verdict(False, policy.window, "address")
    recent = sorted(t for t in account_failures if now - t < policy.window)
    if not recent:
        return ALLOWED
    last = recent[-1]
    if len(recent) >= policy.lockout_threshold:
        until = last + policy.lockout
        if now < until:
            return Verdict(False, until - now, "locked")
        return ALLOWED
    wait = min(policy.throttle_base * 2 ** (len(recent) - 1), policy.throttle_max)
    if now < last + wait:
        return Verdict(False, last + wait - now, "throttled")
    return ALLOWED
