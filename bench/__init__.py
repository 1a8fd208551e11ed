"""Benchmarks for the budgets of DESIGN.md; run with `make bench` (writes bench/results.json)."""
