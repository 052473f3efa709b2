"""Benchmarks for Susurro: relay throughput against baselines run in the same
process tree (``python -m benchmarks.relay_load``), and the client's CPU cost
per message against the bare PyNaCl primitives (``python -m benchmarks.crypto_cost``).

Only ratios within one run mean anything: absolute numbers depend on the
machine and on whatever else it is doing. See docs/performance.md.
"""
