"""Prometheus metrics of the gateway, one registry per app (tests run several apps in one process)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..supervise.events import Event, EventBus, EventKind
from ..supervise.states import ModelState


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("launcher_requests_total", "Requests by model, endpoint, protocol and status",
                                ["model", "endpoint", "protocol", "status"], registry=r)
        self.errors = Counter("launcher_errors_total", "Error answers by model and code", ["model", "code"], registry=r)
        self.in_flight = Gauge("launcher_requests_in_flight", "Requests being served", ["model"], registry=r)
        self.queued = Gauge("launcher_requests_queued", "Requests waiting for an engine slot", ["model"], registry=r)
        self.key_requests = Counter("launcher_key_requests", "Requests of each named key, by model and status",
                                    ["key", "model", "status"], registry=r)
        self.key_tokens = Counter("launcher_key_tokens", "Tokens the engine reported for each named key's requests",
                                  ["key", "model", "kind"], registry=r)
        self.worker_processes = Gauge("launcher_worker_processes", "Processes a worker scaled by load runs now",
                                      ["worker"], registry=r)
        self.refused = Counter("launcher_requests_refused_total", "Requests refused: queue full (429) or draining",
                               ["model", "reason"], registry=r)
        self.ttft = Histogram("launcher_time_to_first_byte_seconds", "Time to the first streamed byte",
                              ["model"], registry=r,
                              buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.latency = Histogram("launcher_request_duration_seconds", "Whole request time", ["model", "endpoint"],
                                 registry=r, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
        self.tokens = Counter("launcher_completion_tokens_total",
                              "Completion tokens (from usage; streamed: one per SSE event)", ["model"], registry=r)
        self.prompt_tokens = Counter("launcher_prompt_tokens_total", "Prompt tokens (from usage)", ["model"],
                                     registry=r)
        self.restarts = Counter("launcher_engine_restarts_total", "Engine restarts after crashes", ["model"],
                                registry=r)
        self.ready = Gauge("launcher_model_ready", "1 when the model has a ready engine", ["model"], registry=r)

    def follow(self, events: EventBus) -> None:
        """Restarts and readiness come from the deployment's events."""
        events.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        if event.kind == EventKind.RESTARTED:
            self.restarts.labels(event.model).inc()
        elif event.kind in (EventKind.STATE, EventKind.ADDED):
            self.ready.labels(event.model).set(1 if event.state == ModelState.READY else 0)
        elif event.kind == EventKind.REMOVED:
            self.ready.remove(event.model)
