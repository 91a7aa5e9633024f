"""Prometheus metrics of one deployment, and the per-function figures the dashboard shows.

Each deployment has its own `CollectorRegistry` (tests run many deployments in a process).
Per function: calls by outcome, a duration histogram, conflict retries, documents and bytes
read and written, log lines. Per server: gauges read at scrape time from callables the
deployment and the server register (live queries, sockets, pool, ...), and the commit
stream's and the scheduler's lag. Percentiles for the dashboard come from a window of each
function's recent calls (exact over the window; Prometheus gets the histogram).
"""

from __future__ import annotations

import bisect
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from reactive_store.observe.records import Execution

PREFIX = "reactive_store"
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
               30.0, 60.0)
WINDOW = 500  # recent calls kept per function for percentiles and the latency chart


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; 0 for no values."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class FunctionFigures:
    """What one function has done since the process started, and its recent calls.

    Plain numbers updated per call with no lock (the event loop runs one call's bookkeeping
    at a time) and turned into Prometheus families only when scraped.
    """

    path: str
    kind: str
    calls: int = 0
    errors: int = 0
    retries: int = 0
    documents_read: int = 0
    documents_written: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    seconds: float = 0.0  # total duration, for the histogram's sum
    buckets: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    lines: dict[str, int] = field(default_factory=dict)  # by level
    recent: deque[tuple[float, float, bool]] = field(
        default_factory=lambda: deque(maxlen=WINDOW))  # (finished ms, duration ms, ok)

    def record(self, ex: Execution) -> None:
        seconds = ex.duration_ms / 1000.0
        self.calls += 1
        self.errors += not ex.ok
        self.retries += ex.retries
        self.documents_read += ex.documents_read
        self.documents_written += ex.documents_written
        self.bytes_read += ex.bytes_read
        self.bytes_written += ex.bytes_written
        self.seconds += seconds
        self.buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        for line in ex.lines:
            self.lines[line.level] = self.lines.get(line.level, 0) + 1
        self.recent.append((ex.finished, ex.duration_ms, ex.ok))

    def to_json(self, samples: int = 120) -> dict[str, Any]:
        durations = sorted(d for _, d, _ in self.recent)
        points = list(self.recent)[-samples:]
        return {
            "path": self.path, "kind": self.kind, "calls": self.calls, "errors": self.errors,
            "retries": self.retries, "documentsRead": self.documents_read,
            "documentsWritten": self.documents_written, "bytesRead": self.bytes_read,
            "bytesWritten": self.bytes_written, "window": len(durations),
            "p50": percentile(durations, 50), "p95": percentile(durations, 95),
            "p99": percentile(durations, 99),
            "lastCall": points[-1][0] if points else None,
            "recent": [[round(t), round(d, 3), ok] for t, d, ok in points],
        }


class _Functions(Collector):
    """The per-function families, built from `FunctionFigures` when scraped."""

    def __init__(self, functions: dict[str, FunctionFigures]) -> None:
        self.functions = functions

    def collect(self) -> Iterator[Metric]:
        labels = ["function", "kind"]
        calls = CounterMetricFamily(f"{PREFIX}_function_calls", "Function executions, by "
                                    "outcome.", labels=[*labels, "outcome"])
        duration = HistogramMetricFamily(f"{PREFIX}_function_duration_seconds",
                                         "Function execution time, retries included.",
                                         labels=labels)
        retries = CounterMetricFamily(f"{PREFIX}_function_conflict_retries",
                                      "Mutation attempts re-run after a write conflict.",
                                      labels=labels)
        docs = CounterMetricFamily(f"{PREFIX}_function_documents",
                                   "Documents read and written.", labels=[*labels, "op"])
        size = CounterMetricFamily(f"{PREFIX}_function_bytes",
                                   "Document bytes read and written.", labels=[*labels, "op"])
        lines = CounterMetricFamily(f"{PREFIX}_function_log_lines", "Log lines, by level.",
                                    labels=[*labels, "level"])
        for f in list(self.functions.values()):
            key = [f.path, f.kind]
            calls.add_metric([*key, "success"], f.calls - f.errors)
            calls.add_metric([*key, "failure"], f.errors)
            cumulative, running = [], 0
            for bound, n in zip((*map(str, DURATION_BUCKETS), "+Inf"), f.buckets, strict=True):
                running += n
                cumulative.append((bound, running))
            duration.add_metric(key, cumulative, f.seconds)
            retries.add_metric(key, f.retries)
            for op, n, b in (("read", f.documents_read, f.bytes_read),
                             ("written", f.documents_written, f.bytes_written)):
                docs.add_metric([*key, op], n)
                size.add_metric([*key, op], b)
            for level, n in sorted(f.lines.items()):
                lines.add_metric([*key, level], n)
        yield from (calls, duration, retries, docs, size, lines)


class _Gauges(Collector):
    """Server figures read when scraped, from callables registered by their owners."""

    def __init__(self) -> None:
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        self.counters: dict[str, tuple[str, Callable[[], float]]] = {}

    def collect(self) -> Iterator[Metric]:
        for name, (text, read) in list(self.gauges.items()):
            yield GaugeMetricFamily(f"{PREFIX}_{name}", text, value=float(read()))
        for name, (text, read) in list(self.counters.items()):
            yield CounterMetricFamily(f"{PREFIX}_{name}", text, value=float(read()))


class Metrics:
    """The metrics of one deployment; `record(ex)` is called for every execution."""

    def __init__(self, process_metrics: bool = True) -> None:
        self.registry = CollectorRegistry()
        self.started = time.time()
        r = self.registry
        self.functions: dict[str, FunctionFigures] = {}
        r.register(_Functions(self.functions))
        self.commit_lag = Histogram(f"{PREFIX}_commit_stream_lag_seconds",
                                    "From a commit to this process processing it.",
                                    buckets=LAG_BUCKETS, registry=r)
        self.scheduler_lag = Histogram(f"{PREFIX}_scheduler_lag_seconds",
                                       "From a job's scheduled time to its start.",
                                       buckets=LAG_BUCKETS, registry=r)
        self._gauges = _Gauges()
        r.register(self._gauges)
        if process_metrics:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        self.last_commit_lag = 0.0
        self.last_scheduler_lag = 0.0

    def gauge(self, name: str, text: str, read: Callable[[], float]) -> None:
        """Export `read()` as the gauge `reactive_store_<name>` (read at every scrape)."""
        self._gauges.gauges[name] = (text, read)

    def counter(self, name: str, text: str, read: Callable[[], float]) -> None:
        """Export `read()`, a number that only grows, as a counter."""
        self._gauges.counters[name] = (text, read)

    def server_figures(self) -> dict[str, float]:
        """The registered gauges and counters, by name (for the dashboard)."""
        out = {name: float(read()) for name, (_, read) in self._gauges.gauges.items()}
        out |= {name: float(read()) for name, (_, read) in self._gauges.counters.items()}
        return out

    def record(self, ex: Execution) -> None:
        figures = self.functions.get(ex.path)
        if figures is None or figures.kind != ex.kind:  # new, or redefined by a reload
            figures = self.functions[ex.path] = FunctionFigures(ex.path, ex.kind)
        figures.record(ex)

    def observe_commit_lag(self, seconds: float) -> None:
        self.last_commit_lag = max(0.0, seconds)
        self.commit_lag.observe(self.last_commit_lag)

    def observe_scheduler_lag(self, seconds: float) -> None:
        self.last_scheduler_lag = max(0.0, seconds)
        self.scheduler_lag.observe(self.last_scheduler_lag)

    def render(self) -> bytes:
        """Everything, in the Prometheus text format."""
        return generate_latest(self.registry)
