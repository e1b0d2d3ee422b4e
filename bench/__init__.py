"""Benchmarks: every number a ratio against a baseline measured in the same run.

``python -m bench`` runs the whole suite (see bench/README.md); the older
``bench_oneclick.py`` and ``bench_report.py`` still run on their own.
"""
