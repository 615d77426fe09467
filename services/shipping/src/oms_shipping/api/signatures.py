"""Who may post carrier events: the carrier webhook's signature check.

Standard Webhooks (the `standardwebhooks` package): `webhook-id`,
`webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">` (several space-separated signatures allowed, for key
rotation), timestamps more than 5 minutes off refused. The key is the UTF-8 of
OMS_CARRIER_SECRET, or the base64-decoded rest of a `whsec_...` secret.

The earlier body-only `X-Signature: sha256=<hex>` is accepted only when
OMS_CARRIER_ACCEPT_LEGACY_SIGNATURE is set: it binds neither a time nor an id, so a
captured delivery can be replayed for as long as the secret lives.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from standardwebhooks import Webhook, WebhookVerificationError

from oms_runtime.problems import Problem

# What we store and log of a webhook id: visible ASCII, bounded.
_WEBHOOK_ID = re.compile(r"^[\x21-\x7e]{1,255}$")


def _refused(detail: str, field: str) -> Problem:
    return Problem(401, "bad-signature", "Signature missing or wrong", detail, field=field)


def carrier_webhook(secret: str) -> Webhook:
    # A plain secret is used as its UTF-8 bytes (the library would base64-decode a
    # string); a `whsec_` one is handed over as is, for the library to decode.
    return Webhook(secret if secret.startswith("whsec_") else secret.encode())


@dataclass(frozen=True)
class SignatureHeaders:
    webhook_id: str | None
    webhook_timestamp: str | None
    webhook_signature: str | None
    legacy_signature: str | None  # X-Signature


def verify_carrier_signature(
    raw_body: bytes, headers: SignatureHeaders, secret: str, *, accept_legacy: bool
) -> str | None:
    """Check the delivery's signature; answer its webhook id (None for a legacy
    signature, which has none), or raise a 401 problem naming the header at fault."""
    webhook_id = headers.webhook_id
    if webhook_id is not None or headers.webhook_signature is not None:
        if webhook_id is None or not _WEBHOOK_ID.match(webhook_id):
            raise _refused("webhook-id must be 1 to 255 visible ASCII characters", "webhook-id")
        try:
            carrier_webhook(secret).verify(
                raw_body,
                {
                    "webhook-id": webhook_id,
                    "webhook-timestamp": headers.webhook_timestamp or "",
                    "webhook-signature": headers.webhook_signature or "",
                },
                json_parse=False,
            )
        except (WebhookVerificationError, ValueError) as exc:
            # ValueError: a malformed signature list or base64, a body that is not
            # UTF-8 (the library raises those as they come).
            raise _refused(
                f"{exc or 'malformed signature'}; sign the Standard Webhooks way: "
                'webhook-signature: v1,<base64 HMAC-SHA256 of "<webhook-id>.'
                '<webhook-timestamp>.<body>">, timestamp within 5 minutes',
                "webhook-signature",
            ) from exc
        return webhook_id
    legacy = headers.legacy_signature
    if legacy is not None:
        if not accept_legacy:
            raise _refused(
                "The body-only X-Signature is no longer accepted; sign with the "
                "webhook-id, webhook-timestamp and webhook-signature headers",
                "X-Signature",
            )
        expected = "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
        # Compared as bytes: a non-ASCII header must be a mismatch, not a TypeError.
        if not hmac.compare_digest(legacy.strip().encode(), expected.encode()):
            raise _refused(
                "X-Signature must be sha256=<hex HMAC-SHA256 of the body>", "X-Signature"
            )
        return None
    raise _refused(
        "Sign the delivery with the webhook-id, webhook-timestamp and webhook-signature "
        "headers (Standard Webhooks)",
        "webhook-signature",
    )
