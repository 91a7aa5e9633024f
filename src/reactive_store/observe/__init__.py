"""Observability: function logs, execution records and metrics.

`lines` is the vocabulary (a log line, its level, Convex's limits, the wire formats);
`capture` routes `print()` and `logging` output to the execution that produced it, by
contextvars, never process-wide; `records` keeps finished executions in a bounded ring and
wakes whoever waits for new ones; `metrics` turns them into Prometheus metrics and the
per-function figures the dashboard shows; `observer` is the one object the engine calls
around every execution; `terminal` prints executions the way `convex dev` and `convex logs`
do. May import the core modules (below `storage`); imported by the engine and above.
"""
