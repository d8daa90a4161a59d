"""Prometheus metrics (prometheus_client), served at `/metrics` by every web node and by
`lti-tool worker --metrics-port`.

Per process (summed by Prometheus across nodes; with `serve --workers N` the gunicorn workers
share a `PROMETHEUS_MULTIPROC_DIR`):
- `lti_tool_launches_total{outcome}`: LTI launches, `ok` or `error`;
- `lti_tool_errors_total{kind}`: answers >= 400 by kind (the error code, or `http_<status>`),
  and failed job attempts (`job_<kind>`);
- `lti_tool_lms_request_seconds{host}` and `lti_tool_lms_failures_total{host,kind}`: calls to
  an LMS, labelled by the LMS host (each registration has its own recorded hosts).
Read from the database at scrape time (the same figures on every node):
- `lti_tool_jobs{status}`, `lti_tool_job_oldest_unfinished_seconds`;
- `lti_tool_credentials_issued_total`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

LAUNCHES = Counter("lti_tool_launches", "LTI launches", ["outcome"])
ERRORS = Counter("lti_tool_errors", "Errors by kind", ["kind"])
LMS_SECONDS = Histogram("lti_tool_lms_request_seconds", "LMS call latency", ["host"],
                        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
LMS_FAILURES = Counter("lti_tool_lms_failures", "LMS calls that failed", ["host", "kind"])
JOB_SECONDS = Histogram("lti_tool_job_seconds", "Job run time", ["kind"],
                        buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
JOB_LATENCY = Histogram("lti_tool_job_latency_seconds", "From stored to finished", ["kind"],
                        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900))


def observe_lms(host: str | None, seconds: float | None, failure: str | None = None) -> None:
    host = host or "unknown"
    if seconds is not None:
        LMS_SECONDS.labels(host).observe(seconds)
    if failure:
        LMS_FAILURES.labels(host, failure).inc()


class DatabaseCollector(Collector):
    """Queue depth and age and credentials issued, read when Prometheus scrapes."""

    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self.read = read

    def collect(self) -> Iterable[Any]:
        try:
            figures = self.read()
        except Exception:  # a scrape during a database outage still answers
            up = GaugeMetricFamily("lti_tool_database_up", "The database answered the scrape")
            up.add_metric([], 0)
            yield up
            return
        up = GaugeMetricFamily("lti_tool_database_up", "The database answered the scrape")
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily("lti_tool_jobs", "Jobs in the outbox by status", labels=["status"])
        for status, count in sorted(figures["jobs"].items()):
            jobs.add_metric([status], count)
        yield jobs
        age = GaugeMetricFamily("lti_tool_job_oldest_unfinished_seconds",
                                "Age of the oldest waiting or running job")
        age.add_metric([], figures["oldest_seconds"])
        yield age
        issued = CounterMetricFamily("lti_tool_credentials_issued", "Credentials issued")
        issued.add_metric([], figures["credentials"])
        yield issued


def exposition(database: Collector | None) -> tuple[bytes, str]:
    """The text format for one scrape: this process's (or all gunicorn workers') metrics plus
    the database figures."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    if database is not None:
        extra = CollectorRegistry()
        extra.register(database)
        body += generate_latest(extra)
    return body, CONTENT_TYPE_LATEST
