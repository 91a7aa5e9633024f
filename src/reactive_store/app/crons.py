"""Cron declarations (`functions/crons.py`: `crons = Crons()`) and their next run times.

All schedules are in UTC. A declaration that does not parse is reported (logged, and listed
in `Crons.errors`) and left out; the others keep running.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

log = logging.getLogger(__name__)

_DAYS = {"sunday": 0, "monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5,
         "saturday": 6}


@dataclass(frozen=True)
class CronJob:
    """One declared cron: `schedule` is "every <seconds>" or a 5-field cron expression."""

    name: str
    schedule: str
    fn: Any
    args: dict[str, Any] = field(default_factory=dict)

    def next_run(self, after_ms: float) -> float:
        """The first run time strictly after `after_ms` (ms since the epoch)."""
        if self.schedule.startswith("every "):
            period = float(self.schedule.removeprefix("every ")) * 1000.0
            return (math.floor(after_ms / period) + 1) * period
        start = datetime.fromtimestamp(after_ms / 1000.0, tz=UTC)
        nxt: datetime = croniter(self.schedule, start).get_next(datetime)
        return nxt.timestamp() * 1000.0


class Crons:
    """The app's crons, declared in `functions/crons.py`."""

    def __init__(self) -> None:
        self.jobs: dict[str, CronJob] = {}
        self.errors: list[str] = []

    def _add(self, name: str, schedule: str, fn: Any, args: dict[str, Any] | None) -> None:
        problem = None
        if not isinstance(name, str) or not name:
            problem = f"cron name must be a non-empty string, got {name!r}"
        elif name in self.jobs:
            problem = f"cron {name!r} is declared twice"
        elif args is not None and not isinstance(args, dict):
            problem = f"cron {name!r}: args must be an object"
        elif not schedule.startswith("every ") and not croniter.is_valid(schedule):
            problem = f"cron {name!r}: {schedule!r} is not a valid cron expression " \
                      "(minute hour day-of-month month day-of-week)"
        if problem is not None:
            log.error("%s; this cron will not run", problem)
            self.errors.append(problem)
            return
        self.jobs[name] = CronJob(name, schedule, fn, dict(args or {}))

    def interval(self, name: str, *, fn: Any, args: dict[str, Any] | None = None,
                 seconds: float = 0, minutes: float = 0, hours: float = 0) -> None:
        """Run every so many seconds (aligned to multiples of the period since the epoch)."""
        period = seconds + 60 * minutes + 3600 * hours
        if not math.isfinite(period) or period <= 0:
            self.errors.append(f"cron {name!r}: the interval must be positive")
            log.error("%s", self.errors[-1])
            return
        self._add(name, f"every {period:g}", fn, args)

    def cron(self, name: str, schedule: str, fn: Any, args: dict[str, Any] | None = None
             ) -> None:
        """Run on a cron schedule, "m h dom mon dow" in UTC."""
        self._add(name, str(schedule), fn, args)

    def hourly(self, name: str, *, minute: int = 0, fn: Any,
               args: dict[str, Any] | None = None) -> None:
        self._add(name, f"{minute} * * * *", fn, args)

    def daily(self, name: str, *, hour: int = 0, minute: int = 0, fn: Any,
              args: dict[str, Any] | None = None) -> None:
        self._add(name, f"{minute} {hour} * * *", fn, args)

    def weekly(self, name: str, *, day_of_week: str | int, hour: int = 0, minute: int = 0,
               fn: Any, args: dict[str, Any] | None = None) -> None:
        day = _DAYS.get(str(day_of_week).lower(), day_of_week)
        self._add(name, f"{minute} {hour} * * {day}", fn, args)
