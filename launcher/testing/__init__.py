"""What tests and benchmarks share: the fake engine, an in-memory process, the `launch` harness, `wait_for`."""
