"""The bench's CPU per order counts the system, not the harness around it; so does
its ratio to RabbitMQ's CPU."""

from oms_devtools.bench.report import system_cpu_ms_per_order, system_cpu_per_rabbitmq


def cpu(**seconds: float) -> dict:
    names = {
        "bench": "bench (load generator)",
        "gateway": "gateway",
        "steal": "stolen by the hypervisor",
        "other": "other processes",
        "pg_ours": "postgres: bench database backends",
        "pg_rest": "postgres: other (background, other databases)",
        "pg_gateway": "postgres: the gateway simulator's database",
        "kernel": "kernel (irq, softirq)",
    }
    return {
        "processes": {
            names.get(name, name): {"cpu_seconds": value} for name, value in seconds.items()
        }
    }


def test_services_postgres_rabbitmq_and_the_kernel_are_the_system() -> None:
    measured = cpu(order=4.0, payment=3.0, pg_ours=2.0, rabbitmq=0.5, kernel=0.5)
    assert system_cpu_ms_per_order(measured, completed=1000) == 10.0


def test_the_load_generator_the_simulator_and_the_rest_of_the_machine_are_not() -> None:
    measured = cpu(
        order=1.0, bench=5.0, gateway=5.0, pg_gateway=5.0, steal=5.0, other=5.0, pg_rest=5.0
    )
    assert system_cpu_ms_per_order(measured, completed=100) == 10.0


def test_replicas_count_like_their_service() -> None:
    measured = {"processes": {"order": {"cpu_seconds": 1.0}, "order:2": {"cpu_seconds": 1.0}}}
    assert system_cpu_ms_per_order(measured, completed=200) == 10.0


def test_no_completed_orders_gives_no_figure() -> None:
    assert system_cpu_ms_per_order(cpu(order=1.0), completed=0) is None


def test_the_ratio_to_rabbitmq_counts_the_system_and_not_the_harness() -> None:
    measured = cpu(order=4.0, payment=3.0, pg_ours=1.5, rabbitmq=1.0, kernel=0.5, bench=9.0)
    assert system_cpu_per_rabbitmq(measured) == 10.0


def test_the_ratio_stays_when_every_process_slows_down_together() -> None:
    fast = cpu(order=4.0, payment=3.0, rabbitmq=1.0)
    slow = cpu(order=6.0, payment=4.5, rabbitmq=1.5)
    assert system_cpu_per_rabbitmq(fast) == system_cpu_per_rabbitmq(slow) == 8.0


def test_no_rabbitmq_time_gives_no_ratio() -> None:
    assert system_cpu_per_rabbitmq(cpu(order=1.0)) is None
