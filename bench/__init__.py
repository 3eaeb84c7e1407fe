"""Benchmarks (speed and accuracy targets live here, never in tests)."""
