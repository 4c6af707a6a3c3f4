"""Benchmarks for aggregator (not part of the test run): `python -m bench --help`."""
