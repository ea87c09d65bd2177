"""Benchmarks are run by `nox -s bench` (CPU) and `nox -s gpu`; never by the test run."""
