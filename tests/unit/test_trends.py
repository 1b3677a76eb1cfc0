"""Tier 1: the console's sparklines: tokens/s from the completion-token totals between samples, queue depth as
sampled, a bounded history per model, and both read from the gateway's real counters."""
from launcher.gateway.console.trends import Trends, _by_model
from launcher.gateway.metrics import Metrics


def test_rates_come_from_the_totals_between_two_samples():
    t = Trends(keep=3)
    t.sample({"a": 100.0}, {"a": 2}, now=10.0)
    t.sample({"a": 140.0, "b": 6.0}, {"a": 0}, now=12.0)
    t.sample({"a": 140.0, "b": 10.0}, {}, now=14.0)
    assert t.of("a") == {"tokens_per_s": [20.0, 0.0], "queued": [2, 0, 0]}
    assert t.of("b") == {"tokens_per_s": [3.0, 2.0], "queued": []}
    assert t.of("never") == {"tokens_per_s": [], "queued": []}
    for n in range(5):
        t.sample({"a": 140.0 + n}, {"a": n}, now=16.0 + 2 * n)
    assert t.of("a")["queued"] == [2, 3, 4] and len(t.of("a")["tokens_per_s"]) == 3   # the oldest are dropped


def test_a_restarted_counter_never_gives_a_negative_rate():
    t = Trends()
    t.sample({"a": 50.0}, {}, now=0.0)
    t.sample({"a": 0.0}, {}, now=2.0)
    assert t.of("a")["tokens_per_s"] == [0.0]


def test_the_samples_are_read_from_the_gateways_counters():
    m = Metrics()
    m.tokens.labels(model="gemma").inc(42)
    m.queued.labels(model="gemma").set(3)
    assert _by_model(m.tokens) == {"gemma": 42.0} and _by_model(m.queued) == {"gemma": 3.0}
