"""Synthetic Vietnamese administrative documents for tests, training and benchmarks."""
