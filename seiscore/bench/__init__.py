"""Benchmarks: ``python -m seiscore.bench NAME [options]``.

Each benchmark is a module ``seiscore.bench.NAME`` with ``main(argv) -> int``. Results
go to ``benchmarks/results/`` as JSON and markdown; ``BENCHMARKS.md`` keeps the latest
figures. Benchmarks, not tests, check speed and memory targets.
"""
