"""Benchmarks (not tests). `make bench` runs them all; see BENCHMARKS.md for the figures."""
