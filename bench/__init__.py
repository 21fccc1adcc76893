"""Benchmarks: `python -m bench` (make bench) runs them all; README "Benchmarks" has the goals."""
