"""A service principal (the console) acting for a person: the RFC 8693 `act` claim."""

from __future__ import annotations

import jwt
import pytest

from oms_runtime.auth import decode_token, mint_token
from oms_runtime.problems import Problem

SECRET = "unit-test-secret-that-is-long-enough-for-hs256"


def test_a_token_minted_for_an_actor_names_them_and_the_service_principal() -> None:
    principal = decode_token(SECRET, mint_token(SECRET, "console", "admin", actor="alice"))
    assert principal.subject == "console" and principal.actor == "alice"
    assert principal.is_admin
    assert principal.name == "alice (console)"


def test_a_token_without_an_actor_is_recorded_under_its_subject() -> None:
    assert decode_token(SECRET, mint_token(SECRET, "ops", "admin")).name == "ops"


def test_an_act_claim_without_a_subject_is_refused() -> None:
    token = jwt.encode(
        {"sub": "console", "role": "admin", "exp": 4102444800, "act": {"sub": ""}},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(Problem) as refused:
        decode_token(SECRET, token)
    assert refused.value.status == 401
