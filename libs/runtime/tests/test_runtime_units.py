"""Runtime pieces that need no I/O: tokens, error field paths, settings, money, logs."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from pydantic import TypeAdapter, ValidationError

from oms_runtime import tracing
from oms_runtime.auth import Principal, decode_token, mint_token
from oms_runtime.logging import JsonFormatter, log_context
from oms_runtime.money import CurrencyCode
from oms_runtime.problems import Problem, _field_path
from oms_runtime.settings import ServiceSettings
from oms_runtime.validation import CountryCode

SECRET = "unit-test-secret-that-is-at-least-32-bytes-long"
OTHER_SECRET = "another-secret-that-is-also-at-least-32-bytes-long"


# -- bearer tokens ---------------------------------------------------------------------


def test_a_minted_customer_token_decodes_to_the_same_customer() -> None:
    token = mint_token(SECRET, "alice", "customer")

    principal = decode_token(SECRET, token)

    assert principal == Principal(subject="alice", role="customer")
    assert principal.is_admin is False


def test_a_minted_admin_token_decodes_to_an_admin() -> None:
    principal = decode_token(SECRET, mint_token(SECRET, "ops", "admin"))

    assert principal == Principal(subject="ops", role="admin")
    assert principal.is_admin is True


def test_a_minted_token_expires_after_its_lifetime() -> None:
    before = int(time.time())

    claims = jwt.decode(mint_token(SECRET, "alice", "customer", 600), SECRET, ["HS256"])

    assert before + 600 <= claims["exp"] <= int(time.time()) + 600


def test_an_expired_token_is_refused_as_unauthorized() -> None:
    token = mint_token(SECRET, "alice", "customer", ttl_seconds=-60)

    with pytest.raises(Problem) as raised:
        decode_token(SECRET, token)

    assert raised.value.status == 401
    assert raised.value.detail == "The token has expired"


def test_a_token_signed_with_another_secret_is_refused_as_unauthorized() -> None:
    token = mint_token(OTHER_SECRET, "alice", "admin")

    with pytest.raises(Problem) as raised:
        decode_token(SECRET, token)

    assert raised.value.status == 401
    assert raised.value.detail == "The token is not valid"


def test_an_unsigned_token_is_refused_as_unauthorized() -> None:
    token = jwt.encode(
        {"sub": "alice", "role": "admin", "exp": int(time.time()) + 600}, None, algorithm="none"
    )

    with pytest.raises(Problem) as raised:
        decode_token(SECRET, token)

    assert raised.value.status == 401


def test_a_token_without_a_role_is_refused_as_unauthorized() -> None:
    token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, SECRET, "HS256")

    with pytest.raises(Problem) as raised:
        decode_token(SECRET, token)

    assert raised.value.status == 401


def test_a_token_with_a_role_other_than_customer_or_admin_is_refused_as_unauthorized() -> None:
    token = jwt.encode(
        {"sub": "alice", "role": "root", "exp": int(time.time()) + 600}, SECRET, "HS256"
    )

    with pytest.raises(Problem) as raised:
        decode_token(SECRET, token)

    assert raised.value.status == 401


def test_a_token_without_an_expiry_is_refused_as_unauthorized() -> None:
    token = jwt.encode({"sub": "alice", "role": "customer"}, SECRET, "HS256")

    with pytest.raises(Problem) as raised:
        decode_token(SECRET, token)

    assert raised.value.status == 401


def test_a_token_with_an_empty_subject_is_refused_as_unauthorized() -> None:
    token = jwt.encode({"sub": "", "role": "customer", "exp": int(time.time()) + 600}, SECRET)

    with pytest.raises(Problem) as raised:
        decode_token(SECRET, token)

    assert raised.value.status == 401


def test_a_refused_token_tells_the_client_to_authenticate_with_a_bearer_token() -> None:
    with pytest.raises(Problem) as raised:
        decode_token(SECRET, "not-a-jwt")

    assert raised.value.status == 401
    assert raised.value.slug == "unauthorized"
    assert raised.value.headers == {"WWW-Authenticate": 'Bearer realm="oms"'}


# -- validation error field paths ------------------------------------------------------


@pytest.mark.parametrize(
    ("loc", "field"),
    [
        (("body", "items", 0, "quantity"), "items[0].quantity"),
        (("query", "limit"), "limit"),
        (("path", "order_id"), "order_id"),
        (("header", "idempotency-key"), "idempotency-key"),
        (("body", "shipping_address", "postal_code"), "shipping_address.postal_code"),
        (("body", "items", 2), "items[2]"),
        (("body", "items", 0, "tags", 1), "items[0].tags[1]"),
    ],
)
def test_a_validation_error_names_the_field_the_way_a_client_wrote_it(
    loc: tuple[object, ...], field: str
) -> None:
    assert _field_path(loc) == field


def test_a_validation_error_about_the_whole_body_names_the_body() -> None:
    assert _field_path(("body",)) == "body"


# -- settings --------------------------------------------------------------------------


def test_retry_delays_given_as_comma_separated_seconds_become_a_tuple_of_floats() -> None:
    settings = ServiceSettings(_env_file=None, retry_delays="0.5, 2,10")

    assert settings.retry_delays == (0.5, 2.0, 10.0)


def test_retry_delays_are_read_from_the_environment_as_comma_separated_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMS_RETRY_DELAYS", "1.5,3")

    settings = ServiceSettings(_env_file=None)

    assert settings.retry_delays == (1.5, 3.0)


def test_retry_delays_default_to_one_five_and_thirty_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OMS_RETRY_DELAYS", raising=False)

    settings = ServiceSettings(_env_file=None)

    assert settings.retry_delays == (1.0, 5.0, 30.0)


# -- money -----------------------------------------------------------------------------


def test_a_known_iso_currency_code_is_accepted() -> None:
    assert TypeAdapter(CurrencyCode).validate_python("EUR") == "EUR"


def test_a_well_formed_but_unknown_currency_code_is_rejected() -> None:
    with pytest.raises(ValidationError, match="EUX is not an ISO 4217 currency code"):
        TypeAdapter(CurrencyCode).validate_python("EUX")


@pytest.mark.parametrize("code", ["eur", "EURO", "EU", ""])
def test_a_currency_code_that_is_not_three_capital_letters_is_rejected(code: str) -> None:
    with pytest.raises(ValidationError) as raised:
        TypeAdapter(CurrencyCode).validate_python(code)

    assert [error["type"] for error in raised.value.errors()] == ["string_pattern_mismatch"]


@pytest.mark.parametrize(
    ("code_type", "known", "unknown"),
    [(CurrencyCode, "EUR", "EUX"), (CountryCode, "DE", "AA")],
    ids=["currency", "country"],
)
def test_the_published_schema_lists_exactly_the_codes_that_are_accepted(
    code_type: Any, known: str, unknown: str
) -> None:
    """An API client (or the fuzzer) reading the OpenAPI document learns which codes
    pass, instead of a pattern that also promises codes the service refuses."""
    adapter = TypeAdapter(code_type)
    listed = adapter.json_schema()["enum"]
    for code in listed:
        adapter.validate_python(code)
    assert known in listed
    assert unknown not in listed
    with pytest.raises(ValidationError):
        adapter.validate_python(unknown)


# -- JSON logs -------------------------------------------------------------------------


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, ListHandler]]:
    logger = logging.getLogger("oms_runtime.tests.json_log")
    handler = ListHandler()
    handler.setFormatter(JsonFormatter("inventory"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)


def test_a_log_line_is_one_json_object_with_message_level_and_service(
    json_log: tuple[logging.Logger, ListHandler],
) -> None:
    logger, handler = json_log

    logger.warning("stock low for %s", "MUG")

    [line] = handler.lines
    entry = json.loads(line)
    assert entry["msg"] == "stock low for MUG"
    assert entry["level"] == "warning"
    assert entry["service"] == "inventory"
    assert entry["logger"] == "oms_runtime.tests.json_log"


def test_a_log_line_carries_the_correlation_id_of_the_surrounding_context(
    json_log: tuple[logging.Logger, ListHandler],
) -> None:
    logger, handler = json_log

    with log_context(correlation_id="order-42"):
        logger.info("reserved")
    logger.info("outside")

    inside, outside = (json.loads(line) for line in handler.lines)
    assert inside["correlation_id"] == "order-42"
    assert "correlation_id" not in outside


def test_nested_log_contexts_add_fields_and_each_block_leaves_the_outer_ones_as_they_were(
    json_log: tuple[logging.Logger, ListHandler],
) -> None:
    logger, handler = json_log

    with log_context(correlation_id="order-42", message_id=None):
        with contextlib.suppress(RuntimeError), log_context(message_id="m-1"):
            logger.info("inner")
            raise RuntimeError("the handler failed")
        logger.info("outer")
        with tracing.span("handle order.paid", None) as span:
            logger.info("in a span")
        logger.info("after the span")

    inner, outer, in_span, after_span = (json.loads(line) for line in handler.lines)
    assert (inner["correlation_id"], inner["message_id"]) == ("order-42", "m-1")
    assert outer["correlation_id"] == "order-42"
    assert "message_id" not in outer  # left by its block, and None is never attached
    assert in_span["trace_id"] == span.trace_id and len(span.trace_id) == 32
    assert in_span["correlation_id"] == "order-42"
    assert "trace_id" not in after_span
    assert tracing.current() is None


def test_a_log_line_carries_the_fields_passed_as_extra(
    json_log: tuple[logging.Logger, ListHandler],
) -> None:
    logger, handler = json_log

    with log_context(correlation_id="order-42"):
        logger.info("released", extra={"order_id": "order-42", "quantity": 3})

    entry = json.loads(handler.lines[0])
    assert (entry["order_id"], entry["quantity"]) == ("order-42", 3)
    assert entry["correlation_id"] == "order-42"


def test_a_multi_line_message_with_a_traceback_still_logs_as_a_single_line(
    json_log: tuple[logging.Logger, ListHandler],
) -> None:
    logger, handler = json_log

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("first line\nsecond line")

    [line] = handler.lines
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["msg"] == "first line\nsecond line"
    assert "RuntimeError: boom" in entry["exc"]
