"""End-to-end tests (marked e2e): the real app over HTTP, real `python -m bot` processes, the benchmarks' smoke runs."""
