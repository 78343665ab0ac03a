"""Benchmarks of hepml-hub; run them with ``python -m benchmarks.<name>``."""
