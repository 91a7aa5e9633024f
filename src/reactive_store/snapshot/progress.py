"""Progress of a long export or import on stderr: a redrawn bar on a terminal, else a plain
line every few seconds (logs and CI keep a readable record)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR = 30
REDRAW_SECONDS = 0.1
LINE_SECONDS = 5.0


class ProgressBar:
    """Call with (done, total); `finish()` ends the bar's line."""

    def __init__(self, label: str, stream: TextIO | None = None, unit: str = "documents",
                 line_seconds: float = LINE_SECONDS) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self._every = REDRAW_SECONDS if self.tty else line_seconds
        self._last = 0.0
        self._drawn = False
        self._state = (0, 0)

    def __call__(self, done: int, total: int) -> None:
        self._state = (done, total)
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            self._draw()

    def _text(self) -> str:
        done, total = self._state
        if total <= 0:
            return f"{self.label}: {done:,} {self.unit}"
        share = min(done / total, 1.0)
        if not self.tty:
            return f"{self.label}: {done:,}/{total:,} {self.unit} ({share:.0%})"
        filled = int(share * BAR)
        return (f"{self.label} [{'#' * filled}{'.' * (BAR - filled)}] {share:4.0%} "
                f"{done:,}/{total:,} {self.unit}")

    def _draw(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + self._text())
        else:
            self.stream.write(self._text() + "\n")
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        """Draw the final state (on a terminal, then end the line)."""
        if self._drawn or self.tty:
            self._draw()
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
