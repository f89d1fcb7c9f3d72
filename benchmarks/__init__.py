"""Benchmarks and the stand-ins they run against (see benchmarks/README.md)."""
