"""Benchmarks that print tables; not tests. `python -m bench` runs them all."""
