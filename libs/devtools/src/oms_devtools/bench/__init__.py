"""Benchmark of the whole saga: load, latency, throughput, CPU, correctness, capacity.

    python -m oms_devtools.bench [--rate 100] [--duration 30] [--max-rate-duration 30]
                                 [--workers 64] [--mix ok=90,declined=5,out_of_stock=5]
                                 [--locations 1]
                                 [--out bench-results/bench-<timestamp>.json]

Starts the four services and the gateway simulator on their own ports (19000-19003,
19090) against a throwaway database and RabbitMQ vhost, with shipments dispatched
automatically (each SKU stocked at one of `--locations` stock locations: with more
than one, an order of several SKUs ships in a parcel per location, each captured on
its own), and runs two phases:

1. open loop: orders arrive at `--rate` per second (Poisson arrivals) whatever
   the system does, each POST sent at its scheduled time without waiting for
   earlier answers, so queueing shows up as latency instead of slowing the load;
2. max rate: `--workers` clients in a closed loop, each placing an order and
   waiting for its final outcome before the next, so the system runs flat out
   without building an unbounded backlog.

POST latency is measured by the client; the time to `paid`, `shipped` and the final
outcome by consuming the order events from `oms.events` with a queue of its own
(no polling). After each phase it waits (bounded) for every order to settle, and at
the end checks that the run was correct: every order settled with the outcome its
kind calls for, stock conserved, nothing left reserved, captured money equal to the
shipped orders' totals. Exit status 0 only on PASS. Results go to a JSON file; the
database, vhost and processes are removed even on Ctrl-C.

The parts: `load` (the orders sent, and what the event stream says of them), `cpu`
(who spent the machine's CPU), `check` (was the run correct), `report` (latency,
throughput and the printed summary), `run` (the stack, the phases, the CLI).
"""
