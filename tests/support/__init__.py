"""Test support code shared by the suites and the benchmarks (no fixtures here)."""
