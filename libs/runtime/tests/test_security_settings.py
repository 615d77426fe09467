"""Secrets a process refuses to listen beyond loopback with, and the token rules
(lifetime, issuer, audience) every service applies."""

from __future__ import annotations

import time

import jwt
import pytest

from oms_runtime.auth import TokenPolicy, decode_token, mint_token
from oms_runtime.problems import Problem
from oms_runtime.settings import DEVELOPMENT_JWT_SECRET, ServiceSettings, WeakSecrets

STRONG = "x" * 32
SECRET = "unit-test-secret-that-is-at-least-32-bytes-long"


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.53"])
def test_development_secrets_are_fine_on_loopback(host: str) -> None:
    ServiceSettings(jwt_secret=DEVELOPMENT_JWT_SECRET).refuse_weak_secrets(host)


def test_listening_beyond_loopback_with_the_development_jwt_secret_is_refused_naming_it() -> None:
    with pytest.raises(WeakSecrets) as refused:
        ServiceSettings(jwt_secret=DEVELOPMENT_JWT_SECRET).refuse_weak_secrets("0.0.0.0")
    assert "OMS_JWT_SECRET is the public development value" in str(refused.value)


def test_a_secret_shorter_than_32_bytes_is_refused_beyond_loopback() -> None:
    with pytest.raises(WeakSecrets) as refused:
        ServiceSettings(jwt_secret="x" * 31).refuse_weak_secrets("10.0.0.5")
    assert "OMS_JWT_SECRET is shorter than 32 bytes" in str(refused.value)
    ServiceSettings(jwt_secret=STRONG).refuse_weak_secrets("10.0.0.5")


def test_cors_origins_are_read_comma_separated_and_none_by_default() -> None:
    assert ServiceSettings().cors_origins == ()
    parsed = ServiceSettings(cors_origins="https://shop.example, https://admin.example")
    assert parsed.cors_origins == ("https://shop.example", "https://admin.example")


# -- tokens ----------------------------------------------------------------------------


def refusal(token: str, policy: TokenPolicy = TokenPolicy()) -> str:
    with pytest.raises(Problem) as raised:
        decode_token(SECRET, token, policy)
    assert raised.value.status == 401
    return raised.value.detail or ""


def test_a_token_living_longer_than_the_accepted_lifetime_is_refused() -> None:
    policy = TokenPolicy(max_lifetime_seconds=3600)
    assert decode_token(SECRET, mint_token(SECRET, "alice", "customer", 3600), policy)
    detail = refusal(mint_token(SECRET, "alice", "customer", 3601), policy)
    assert "lifetime" in detail


def test_the_default_lifetime_cap_is_a_day() -> None:
    assert decode_token(SECRET, mint_token(SECRET, "alice", "customer", 24 * 3600))
    assert "lifetime" in refusal(mint_token(SECRET, "alice", "customer", 7 * 24 * 3600))


def test_a_token_without_an_issued_at_is_refused() -> None:
    token = jwt.encode(
        {"sub": "alice", "role": "customer", "exp": int(time.time()) + 60}, SECRET, "HS256"
    )
    assert "iat" in refusal(token)


def test_issuer_and_audience_are_checked_when_configured() -> None:
    policy = TokenPolicy(issuer="https://auth.shop", audience="oms")
    good = mint_token(SECRET, "alice", "customer", issuer="https://auth.shop", audience="oms")
    assert decode_token(SECRET, good, policy).subject == "alice"
    assert "`iss`" in refusal(mint_token(SECRET, "a", "customer", audience="oms"), policy)
    other_issuer = mint_token(SECRET, "a", "customer", issuer="https://evil", audience="oms")
    assert "issuer" in refusal(other_issuer, policy)
    other_audience = mint_token(SECRET, "a", "customer", issuer="https://auth.shop", audience="x")
    assert "audience" in refusal(other_audience, policy)
    assert "`aud`" in refusal(
        mint_token(SECRET, "a", "customer", issuer="https://auth.shop"), policy
    )


# -- a token verified once is not trusted beyond what it was verified for -------------


def test_a_token_accepted_before_is_refused_once_it_expires() -> None:
    # Minted in the first half of a second so it has at least half a second to live.
    while time.time() % 1 > 0.5:
        time.sleep(0.05)
    token = mint_token(SECRET, "alice", "customer", ttl_seconds=1)
    assert decode_token(SECRET, token).subject == "alice"
    assert decode_token(SECRET, token).subject == "alice"
    expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires_at - time.time()) + 0.01)
    assert refusal(token) == "The token has expired"


def test_a_token_accepted_with_one_secret_is_refused_with_another() -> None:
    token = mint_token(SECRET, "alice", "admin")
    assert decode_token(SECRET, token).is_admin
    with pytest.raises(Problem) as refused:
        decode_token("another-secret-that-is-at-least-32-bytes-long", token)
    assert refused.value.status == 401


def test_a_token_accepted_under_one_policy_is_checked_again_under_another() -> None:
    token = mint_token(SECRET, "alice", "customer", 3600)
    assert decode_token(SECRET, token, TokenPolicy(max_lifetime_seconds=3600)).subject == "alice"
    assert "lifetime" in refusal(token, TokenPolicy(max_lifetime_seconds=60))
    assert "`aud`" in refusal(token, TokenPolicy(audience="oms"))


def test_a_refused_token_is_refused_every_time() -> None:
    forged = mint_token("another-secret-that-is-at-least-32-bytes-long", "mallory", "admin")
    assert refusal(forged) == "The token is not valid"
    assert refusal(forged) == "The token is not valid"
