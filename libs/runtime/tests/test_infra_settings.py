"""Settings for serving HTTPS, the queue type, database timeouts and garbage
collection, and the queue arguments each queue type gives a service's queues."""

from __future__ import annotations

import gc

import pytest
from pydantic import ValidationError

from oms_runtime.cli import tune_garbage_collection
from oms_runtime.messaging.queues import ServiceQueues
from oms_runtime.settings import ServiceSettings


def test_https_needs_both_the_certificate_and_its_key() -> None:
    with pytest.raises(ValidationError, match="OMS_TLS_CERT_FILE and OMS_TLS_KEY_FILE"):
        ServiceSettings(tls_cert_file="/etc/oms/cert.pem")
    with pytest.raises(ValidationError, match="OMS_TLS_CERT_FILE and OMS_TLS_KEY_FILE"):
        ServiceSettings(tls_key_file="/etc/oms/key.pem")
    both = ServiceSettings(tls_cert_file="/etc/oms/cert.pem", tls_key_file="/etc/oms/key.pem")
    assert (both.tls_cert_file, both.tls_key_file) == ("/etc/oms/cert.pem", "/etc/oms/key.pem")


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("queue_type", "mirrored"),
        ("db_timeout_seconds", 0),
        ("queue_delivery_limit", 1),
        ("gc_young_threshold", 100),
    ],
)
def test_nonsense_infrastructure_settings_are_refused_at_start(setting: str, value: object) -> None:
    with pytest.raises(ValidationError):
        ServiceSettings(**{setting: value})


def test_a_service_collects_young_garbage_less_often_than_python_does_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = gc.get_threshold()
    try:
        monkeypatch.setenv("OMS_GC_YOUNG_THRESHOLD", "50000")
        tune_garbage_collection(ServiceSettings().gc_young_threshold)
        assert gc.get_threshold() == (50_000, *before[1:])
        monkeypatch.delenv("OMS_GC_YOUNG_THRESHOLD")
        tune_garbage_collection(ServiceSettings().gc_young_threshold)
        assert gc.get_threshold()[0] == 20_000
    finally:
        gc.set_threshold(*before)


def test_classic_queues_keep_the_arguments_they_always_had() -> None:
    queues = ServiceQueues("oms.order", (1.0,), "classic")
    assert queues.declarations() == [
        ("oms.order", {}),
        (
            "oms.order.retry.1000ms",
            {
                "x-message-ttl": 1000,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": "oms.order",
            },
        ),
        ("oms.order.dead", {}),
    ]


def test_quorum_queues_limit_deliveries_and_dead_letter_at_least_once() -> None:
    queues = ServiceQueues("oms.order", (1.0,), "quorum", delivery_limit=7)
    declared = dict(queues.declarations())
    assert declared["oms.order"] == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 7,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "oms.order.dead",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    assert declared["oms.order.retry.1000ms"] == {
        "x-queue-type": "quorum",
        "x-message-ttl": 1000,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "oms.order",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    assert declared["oms.order.dead"] == {"x-queue-type": "quorum"}
