"""The carrier webhook's signature check: Standard Webhooks, and the legacy form only
when allowed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from oms_runtime.problems import Problem
from oms_shipping.api.signatures import SignatureHeaders, verify_carrier_signature

SECRET = "a-carrier-secret-of-at-least-32-bytes!"
BODY = b'{"tracking_number": "SIM1", "status": "delivered", "occurred_at": "2026-11-30T12:00:00Z"}'


def standard_signature(key: bytes, webhook_id: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def signed(
    body: bytes = BODY,
    *,
    key: bytes = SECRET.encode(),
    webhook_id: str = "msg_1",
    timestamp: int | None = None,
) -> SignatureHeaders:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return SignatureHeaders(
        webhook_id, stamp, standard_signature(key, webhook_id, stamp, body), None
    )


def verify(
    headers: SignatureHeaders,
    body: bytes = BODY,
    *,
    secret: str = SECRET,
    accept_legacy: bool = False,
) -> str | None:
    return verify_carrier_signature(body, headers, secret, accept_legacy=accept_legacy)


def refused_field(headers: SignatureHeaders, body: bytes = BODY, **options: object) -> str:
    with pytest.raises(Problem) as refused:
        verify(headers, body, **options)  # type: ignore[arg-type]
    assert refused.value.status == 401
    return str(refused.value.extensions["field"])


def test_a_standard_webhooks_signature_is_accepted_and_its_id_returned() -> None:
    assert verify(signed(webhook_id="msg_abc")) == "msg_abc"


def test_a_whsec_secret_keys_the_signature_with_its_base64_decoded_rest() -> None:
    key = b"\x00\x01raw key bytes of the carrier\xff"
    secret = "whsec_" + base64.b64encode(key).decode()
    assert verify(signed(key=key), secret=secret) == "msg_1"
    assert refused_field(signed(key=secret.encode()), secret=secret) == "webhook-signature"


def test_one_matching_signature_among_several_is_enough() -> None:
    good = signed()
    rotated = SignatureHeaders(
        good.webhook_id,
        good.webhook_timestamp,
        f"v1,{base64.b64encode(b'old key mac').decode()} {good.webhook_signature}",
        None,
    )
    assert verify(rotated) == "msg_1"


def test_a_signature_over_another_body_id_or_time_is_refused() -> None:
    good = signed()
    assert refused_field(good, BODY.replace(b"SIM1", b"SIM2")) == "webhook-signature"
    other_id = SignatureHeaders("msg_2", good.webhook_timestamp, good.webhook_signature, None)
    assert refused_field(other_id) == "webhook-signature"
    later = str(int(good.webhook_timestamp or 0) + 1)
    assert refused_field(SignatureHeaders("msg_1", later, good.webhook_signature, None)) == (
        "webhook-signature"
    )


@pytest.mark.parametrize("minutes", [-6, 6])
def test_a_timestamp_more_than_five_minutes_off_is_refused(minutes: int) -> None:
    assert refused_field(signed(timestamp=int(time.time()) + minutes * 60)) == "webhook-signature"


@pytest.mark.parametrize(
    "signature",
    ["", "v1", "v1,not base64!", "v1,été", "v2,AAAA", "v1,AAAA  v1,", "sha256=abc"],
    ids=["empty", "no-comma", "bad-base64", "non-ascii", "unknown-version", "blanks", "legacy"],
)
def test_a_malformed_signature_is_refused_as_unauthorized(signature: str) -> None:
    headers = SignatureHeaders("msg_1", str(int(time.time())), signature, None)
    assert refused_field(headers) == "webhook-signature"


@pytest.mark.parametrize("webhook_id", ["", "a b", "é", "x" * 256])
def test_a_missing_or_odd_webhook_id_is_refused(webhook_id: str) -> None:
    headers = signed(webhook_id="msg_1")
    odd = SignatureHeaders(
        webhook_id or None, headers.webhook_timestamp, headers.webhook_signature, None
    )
    assert refused_field(odd) == "webhook-id"


def test_an_unsigned_delivery_is_refused() -> None:
    assert refused_field(SignatureHeaders(None, None, None, None)) == "webhook-signature"


def legacy(body: bytes = BODY, secret: str = SECRET) -> SignatureHeaders:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return SignatureHeaders(None, None, None, f"sha256={digest}")


def test_the_body_only_legacy_signature_is_refused_by_default() -> None:
    assert refused_field(legacy()) == "X-Signature"


def test_the_legacy_signature_is_accepted_when_the_setting_allows_it() -> None:
    assert verify(legacy(), accept_legacy=True) is None
    forged = legacy(secret="another secret")
    assert refused_field(forged, accept_legacy=True) == "X-Signature"


def test_a_non_ascii_legacy_signature_is_unauthorized_not_an_error() -> None:
    headers = SignatureHeaders(None, None, None, "sha256=été")
    assert refused_field(headers, accept_legacy=True) == "X-Signature"
    assert refused_field(headers) == "X-Signature"
