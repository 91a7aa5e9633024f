"""Metrics: Prometheus families, per-function figures and percentiles, registered gauges."""

from __future__ import annotations

from reactive_store.observe.metrics import Metrics, percentile
from reactive_store.observe.records import Execution


def execution(path: str, ms: float, ok: bool = True, retries: int = 0) -> Execution:
    ex = Execution("i", path, "mutation", "HttpApi", None, 0.0, ms, ok, retries=retries,
                   finished=1000.0 + ms)
    ex.documents_read, ex.documents_written, ex.bytes_written = 2, 1, 40
    return ex


def test_percentile_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == \
        (50.0, 95.0, 99.0)
    assert percentile([], 50) == 0.0 and percentile([7.0], 99) == 7.0


def test_function_figures_and_prometheus_text() -> None:
    metrics = Metrics(process_metrics=False)
    for ms in range(1, 21):
        metrics.record(execution("notes:add", float(ms)))
    metrics.record(execution("notes:add", 100.0, ok=False, retries=3))
    figures = metrics.functions["notes:add"].to_json(samples=5)
    assert (figures["calls"], figures["errors"], figures["retries"]) == (21, 1, 3)
    assert (figures["p50"], figures["p95"], figures["p99"]) == (11.0, 20.0, 100.0)
    assert figures["documentsWritten"] == 21 and figures["bytesWritten"] == 840
    assert len(figures["recent"]) == 5 and figures["recent"][-1][1:] == [100.0, False]
    text = metrics.render().decode()
    assert ('reactive_store_function_conflict_retries_total{function="notes:add",'
            'kind="mutation"} 3.0') in text
    assert ('reactive_store_function_duration_seconds_bucket{function="notes:add",'
            'kind="mutation",le="0.005"} 5.0') in text
    assert "process_cpu_seconds_total" not in text


def test_registered_gauges_are_read_at_scrape_time() -> None:
    metrics = Metrics(process_metrics=False)
    value = [1.0]
    metrics.gauge("widgets", "Widgets.", lambda: value[0])
    metrics.counter("things_total", "Things.", lambda: 5)
    value[0] = 7.0
    text = metrics.render().decode()
    assert "reactive_store_widgets 7.0" in text and "reactive_store_things_total 5.0" in text
    assert metrics.server_figures() == {"widgets": 7.0, "things_total": 5.0}
    metrics.observe_commit_lag(-1.0)  # clocks apart: never negative
    metrics.observe_scheduler_lag(0.25)
    assert metrics.last_commit_lag == 0.0 and metrics.last_scheduler_lag == 0.25
