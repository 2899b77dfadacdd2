"""Benchmarks: one script per question, grouped by kind (see bench/README.md).

Run a script from the repository root, e.g. `python bench/speed/floor.py`; each puts the root on sys.path
and imports the shared helpers as `bench.common`.
"""
