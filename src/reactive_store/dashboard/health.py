"""The Health page's system function: the server's figures now and over the last minutes.

The figures are the ones `/metrics` exports (live queries, sockets, re-runs, pool, lags,
...), read from the deployment's metrics; `LiveRefresh` samples them every second into a
short series for the charts and re-runs this query on each sample.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Callable
from typing import Any

from reactive_store.app.registry import FunctionSpec, internal_query
from reactive_store.deployment import Deployment

SAMPLES = 120  # one per second: the last two minutes


def memory_mb() -> float:
    """This process's resident memory (peak when the current figure is not readable)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def sample(deployment: Deployment, last: dict[str, Any] | None) -> dict[str, Any]:
    """The figures now, with rates against the previous sample."""
    m = deployment.metrics
    figures = m.server_figures()
    now = time.time()
    recorded = deployment.observer.log.total
    errors = sum(f.errors for f in m.functions.values())
    seconds = max(1e-6, now - last["t"]) if last else 1.0
    return {
        "t": now, "recorded": recorded, "errors": errors,
        "executionsPerSec": 0.0 if last is None else (recorded - last["recorded"]) / seconds,
        "errorsPerSec": 0.0 if last is None else (errors - last["errors"]) / seconds,
        "liveQueries": figures.get("live_queries", 0.0), "sockets": figures.get("sockets", 0.0),
        "queryReruns": figures.get("query_reruns_total", 0.0),
        "transactions": figures.get("transactions_total", 0.0),
        "jobsRunning": figures.get("jobs_running", 0.0),
        "poolSize": figures.get("pool_size", 0.0), "poolIdle": figures.get("pool_idle", 0.0),
        "poolMax": figures.get("pool_max", 0.0),
        "commitLagMs": m.last_commit_lag * 1000.0,
        "schedulerLagMs": m.last_scheduler_lag * 1000.0, "memoryMb": memory_mb(),
    }


def functions(deployment: Deployment, series: Callable[[], list[dict[str, Any]]]
              ) -> dict[str, FunctionSpec]:
    @internal_query(args={})
    async def figures(ctx: Any) -> dict[str, Any]:
        """The server now, the series of recent samples, and what it serves."""
        samples = series()
        app = deployment.engine.app
        now = sample(deployment, None)
        if samples:  # rates over the last whole second, figures as of now
            now |= {k: samples[-1][k] for k in ("executionsPerSec", "errorsPerSec")}
        return {
            "now": now,
            "series": samples,
            "startedAt": deployment.metrics.started * 1000.0,
            "database": deployment.database_label,
            "processedTs": str(deployment.subscriptions.processed_ts),
            "app": {"functions": len(app.functions), "tables": len(app.schema.tables),
                    "folder": str(app.root)},
            "executionsKept": len(deployment.observer.log),
            "executionBytes": deployment.observer.log.bytes,
            "recording": deployment.observer.enabled,
            "python": platform.python_version(), "pid": os.getpid(),
        }

    return {"figures": figures}
