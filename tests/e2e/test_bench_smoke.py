"""The capacity report of the running services, and the benchmark on a tiny load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from oms_devtools.capacity import fetch_capacity, format_table
from oms_devtools.client import OmsClient, eventually
from oms_devtools.stack import SERVICES, Stack, free_port_block

# The benchmark and the capacity report start or read stacks of their own.
pytestmark = [pytest.mark.e2e, pytest.mark.single_pass]


async def test_the_capacity_report_needs_an_admin_token(oms: OmsClient) -> None:
    url = f"{oms.urls['order']}/admin/capacity"

    anonymous = await oms.http.get(url)
    customer = await oms.http.get(url, headers=oms.as_customer())

    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    assert customer.status_code == 403


async def test_the_capacity_report_measures_the_services_queue(
    oms: OmsClient, stack: Stack
) -> None:
    product = await oms.create_product(on_hand=5)
    placed = await oms.place([(product["sku"], 1)])
    await oms.wait_for_order(placed["id"], "fulfilling")

    response = await oms.http.get(
        f"{oms.urls['order']}/admin/capacity",
        params={"target_utilisation": 0.5},
        headers=oms.admin(),
    )

    assert response.status_code == 200
    report = response.json()
    assert report["service"] == "order"
    [queue] = report["queues"]
    assert queue["queue"] == "oms.order"
    # stock_reserved, payment.authorized and shipment_created at least, shared among
    # the replicas (each reports what it handled itself).
    assert queue["messages"] >= (3 if stack.replicas == 1 else 1)
    assert queue["arrival_rate"] > 0
    assert queue["mean_service_time"] > 0
    assert queue["consumers"] == stack.replicas
    assert isinstance(queue["observed_depth"], int)
    assert queue["target_utilisation"] == 0.5
    assert queue["replicas_needed"] >= 1


async def test_the_capacity_report_refuses_a_target_utilisation_outside_zero_to_one(
    oms: OmsClient,
) -> None:
    response = await oms.http.get(
        f"{oms.urls['order']}/admin/capacity",
        params={"target_utilisation": 1.5},
        headers=oms.admin(),
    )

    assert response.status_code == 422


async def test_the_capacity_cli_prints_one_row_per_service(oms: OmsClient) -> None:
    urls = {service: oms.urls[service] for service in SERVICES}

    reports = await eventually(
        lambda: fetch_capacity(urls, oms.admin_token, 0.7),
        lambda reports: all("error" not in report for report in reports.values()),
        10,
        "every service to report its capacity",
    )
    table = format_table(reports).splitlines()

    assert set(reports) == set(SERVICES)
    assert "rho" in table[1]
    assert [line.split()[0] for line in table[2:]] == list(SERVICES)


def run_bench(tmp_path: Path, *arguments: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    """A tiny benchmark on a block of free ports (the services first, the gateway
    simulator 90 above); its output and its results, once it exited cleanly."""
    out = tmp_path / "bench.json"
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "oms_devtools.bench",
            *arguments,
            "--workers",
            "4",
            "--base-port",
            str(free_port_block(91)),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    return finished, json.loads(out.read_text())


def test_the_benchmark_runs_a_tiny_load_checks_it_and_writes_its_results(
    tmp_path: Path,
) -> None:
    # With the simulator's ledger in Postgres and the services logging as under `make
    # run` (the defaults, a ledger in memory and quiet services, in the other test).
    finished, results = run_bench(
        tmp_path,
        *("--rate", "5", "--duration", "3", "--max-rate-duration", "2"),
        *("--gateway-ledger", "postgres", "--service-logs", "make-run"),
    )

    assert "PASS" in finished.stdout
    assert results["verdict"] == "PASS"
    assert all(check["passed"] for check in results["correctness"]["checks"])
    assert [phase["name"] for phase in results["phases"]] == ["open loop", "max rate"]
    # The simulator's ledger work, counted apart (over both phases: one tiny phase can
    # stay under one of /proc's 10 ms ticks on a fast machine).
    ledger_seconds = 0.0
    for phase in results["phases"]:
        assert phase["accepted"] > 0
        assert phase["errors"] == 0
        assert phase["outcomes"]["unsettled"] == 0
        assert phase["completed_per_second_incl_drain"] > 0
        for latency in ("post", "post_to_paid", "post_to_shipped", "post_to_final"):
            assert phase["latency_ms"][latency]["p99"] is not None
        processes = phase["cpu"]["processes"]
        for process in (
            *SERVICES,
            "gateway",
            "postgres: bench database backends",
            "rabbitmq",
            "bench (load generator)",
            "postgres: the gateway simulator's database",
        ):
            assert process in processes
        assert processes["order"]["cpu_seconds"] > 0
        ledger_seconds += processes["postgres: the gateway simulator's database"]["cpu_seconds"]
        assert phase["system_cpu_ms_per_order"] > 0
        # The services do more than the broker for every message (a tiny phase may
        # leave the broker under one of /proc's 10 ms ticks: then there is no ratio).
        if processes["rabbitmq"]["cpu_seconds"] > 0:
            assert phase["system_cpu_per_rabbitmq"] > 1
        else:
            assert phase["system_cpu_per_rabbitmq"] is None
        assert set(phase["capacity"]) == set(SERVICES)
        for report in phase["capacity"].values():
            assert report["queues"][0]["messages"] > 0
    assert ledger_seconds > 0
    order_log = (Path(results["logs"]) / "order.log").read_text()
    assert "INFO" in order_log and "POST /orders" in order_log


def test_with_several_locations_orders_ship_in_several_parcels_and_the_run_checks_out(
    tmp_path: Path,
) -> None:
    _, results = run_bench(
        tmp_path, "--duration", "0", "--max-rate-duration", "3", "--locations", "3"
    )
    assert results["verdict"] == "PASS"
    assert results["config"]["locations"] == 3
    assert results["config"]["gateway_ledger"] == "memory"
    cpu = results["phases"][0]["cpu"]["processes"]
    assert "postgres: the gateway simulator's database" not in cpu
    parcels = {int(n): orders for n, orders in results["parcels_per_order"].items()}
    assert sum(orders for n, orders in parcels.items() if n >= 2) > 0, parcels
