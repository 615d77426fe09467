"""Tooling for developers, tests and benchmarks; never imported by the services."""
