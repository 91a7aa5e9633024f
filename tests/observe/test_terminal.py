"""Terminal lines as `convex dev` / `convex logs` print them."""

from __future__ import annotations

import io
import re
from datetime import datetime

import pytest

from reactive_store.observe.lines import LogLine
from reactive_store.observe.records import Execution
from reactive_store.observe.terminal import Show, format_entry, local_time, printer


def entry(ok: bool = True, **extra: object) -> dict[str, object]:
    ex = Execution("e1", "notes:add", "mutation", "HttpApi", None, 1000.0, 12.2, ok,
                   None if ok else "Uncaught ValueError: no",
                   None if ok else '  File "notes.py", line 3\nValueError: no', 0,
                   [LogLine("LOG", "hello", 1_796_000_000_000.0),
                    LogLine("WARN", "long", 1_796_000_000_000.0, truncated=True)],
                   finished=1_796_000_000_500.0)
    return {**ex.to_json(), **extra}


def test_local_time_is_node_en_us_to_locale_string() -> None:
    ms = datetime(2026, 11, 30, 9, 5, 3).timestamp() * 1000
    assert local_time(ms) == "11/30/2026, 9:05:03 AM"
    assert local_time(datetime(2026, 1, 2, 0, 0, 9).timestamp() * 1000) == "1/2/2026, 12:00:09 AM"
    assert local_time(datetime(2026, 1, 2, 13, 10, 0).timestamp() * 1000).endswith("1:10:00 PM")


def strip_time(lines: list[str]) -> list[str]:
    return [re.sub(r"^\S+, \S+ [AP]M ", "", line) for line in lines]


def test_success_and_failure_lines() -> None:
    assert strip_time(format_entry(entry())) == [
        "[CONVEX M(notes:add)] [LOG] hello",
        "[CONVEX M(notes:add)] [WARN] long (truncated due to length)"]
    assert strip_time(format_entry(entry(), Show(completions=True)))[-1] == \
        "[CONVEX M(notes:add)] Function executed in 13 ms"
    failed = strip_time(format_entry(entry(ok=False)))
    assert failed[2:] == ["[CONVEX M(notes:add)] Uncaught ValueError: no",
                          '      File "notes.py", line 3', "    ValueError: no"]
    assert format_entry(entry(ok=False), Show(failures=False)) == []
    assert format_entry(entry(), Show(successes=False)) == []
    assert strip_time(format_entry(entry(droppedLogLines=4)))[-1] == \
        "[CONVEX M(notes:add)] (4 more log lines were dropped)"
    assert strip_time(format_entry(entry(logLines=["[LOG] plain string line"]))) == [
        "[CONVEX M(notes:add)] [LOG] plain string line"]


def test_colors_only_when_asked() -> None:
    plain = "\n".join(format_entry(entry(ok=False)))
    colored = "\n".join(format_entry(entry(ok=False), Show(color=True)))
    assert "\033[" not in plain and "\033[31m" in colored and "\033[36m" in colored


def test_printer_writes_text_or_json_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import reactive_store.observe.terminal as terminal

    out = io.StringIO()
    monkeypatch.setattr(terminal, "real_stdout", lambda: out)
    ex = Execution("e1", "notes:add", "mutation", "HttpApi", None, 1.0, 1.0, True,
                   lines=[LogLine("LOG", "hi", 1.0)], finished=2.0)
    printer(Show())(ex)
    printer(Show(), jsonl=True)(ex)
    printer(Show(successes=False), jsonl=True)(ex)
    text, raw = out.getvalue().splitlines()
    assert text.endswith("[CONVEX M(notes:add)] [LOG] hi")
    assert json.loads(raw)["identifier"] == "notes:add"
