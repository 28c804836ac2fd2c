"""Benchmarks: `python -m bench [NAME ...]` (or `make bench`). One module per benchmark: bench_<name>.py."""
