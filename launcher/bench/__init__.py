"""Benchmarks (not tests): serving load, gateway overhead against direct engines and peers."""
