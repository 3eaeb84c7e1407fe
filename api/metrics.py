"""Prometheus metrics of the API (one registry per app, served at ``/metrics``).

Labels use the route template (``/v1/records/{uri}/pdf``), never the concrete path, so record
URIs and owner references never become label values.
"""
from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("sohoa_http_requests_total", "HTTP requests by route template and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("sohoa_http_request_duration_seconds", "Request latency by route template",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.audit_events = Counter("sohoa_audit_events_total", "Audit events written",
                                    ["action", "outcome"], registry=self.registry)
        self.rate_limited = Counter("sohoa_rate_limited_total", "Requests refused by the rate limiter",
                                    ["kind"], registry=self.registry)
        self.jobs = Counter("sohoa_jobs_total", "Digitization jobs by final state", ["status"],
                            registry=self.registry)
        self.job_seconds = Histogram("sohoa_job_duration_seconds", "Digitization job run time",
                                     buckets=(1, 2, 5, 10, 20, 40, 80, 160, 320), registry=self.registry)
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once per label set (it takes a lock and builds a
        key each time; the download path counts every request)."""
        key = (metric, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def audit_event(self, action: str, outcome: str) -> None:
        self.child(self.audit_events, action, outcome).inc()


class MetricsMiddleware:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot download path; the
    labelled children are looked up once per label set, not per request)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            m = self.metrics
            m.child(m.requests, method, template, str(status)).inc()
            m.child(m.latency, method, template).observe(time.perf_counter() - start)
