"""Launching real node processes on loopback: for tests, the demo, benchmarks and the cluster tool."""
