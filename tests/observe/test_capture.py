"""Capture: print() and logging routed per execution by contextvars, within the limits."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator

import pytest

from reactive_store.observe.capture import (
    CAPTURE,
    Capture,
    real_stdout,
    route_app_logs,
    route_logging,
    route_streams,
)
from reactive_store.observe.lines import LogLimits


def messages(capture: Capture) -> list[tuple[str, str]]:
    return [(line.level, line.message) for line in capture.lines]


@pytest.fixture
def capture() -> Iterator[Capture]:
    """A capture set as the running one. Tests call route_streams() themselves: pytest
    swaps sys.stdout between a test's setup and call phases (the engine wraps the streams
    again at every attempt for the same reason)."""
    route_logging()
    c = Capture(LogLimits())
    token = CAPTURE.set(c)
    try:
        yield c
    finally:
        c.close()
        CAPTURE.reset(token)


def test_print_calls_are_lines(capture: Capture) -> None:
    route_streams()
    print("a", "b")
    print("x\ny")
    print()
    print("no end", end="")
    sys.stdout.write("written\n")
    print("err", file=sys.stderr)
    capture.close()
    assert messages(capture) == [("LOG", "a b"), ("LOG", "x\ny"), ("LOG", ""),
                                 ("LOG", "no endwritten"), ("ERROR", "err")]


def test_outside_an_execution_output_goes_to_the_real_stream(
        capsys: pytest.CaptureFixture[str]) -> None:
    route_streams()
    print("to the terminal")
    assert "to the terminal" in capsys.readouterr().out


def test_after_close_writes_go_to_the_real_stream(
        capture: Capture, capsys: pytest.CaptureFixture[str]) -> None:
    route_streams()
    print("kept")
    capture.close()
    print("left running")
    assert messages(capture) == [("LOG", "kept")]
    assert "left running" in capsys.readouterr().out


def test_line_and_count_limits_with_the_overflow_notice() -> None:
    c = Capture(LogLimits(lines=4, line_bytes=5))
    for text in ("12345", "123456", "é" * 3):
        c.add("LOG", text)
    c.add("INFO", "dropped into the notice slot")
    c.add("INFO", "dropped")
    assert [line.wire() for line in c.lines] == [
        "[LOG] 12345", "[LOG] 12345 (truncated due to length)",
        "[LOG] éé (truncated due to length)",
        "[ERROR] Log overflow (maximum 4). Remaining log lines omitted."]
    assert c.dropped == 2


def test_a_long_line_without_newline_is_cut_not_buffered_forever() -> None:
    c = Capture(LogLimits(line_bytes=10))
    for _ in range(5):
        c.write("LOG", "abcdef")
    c.write("LOG", "tail\n")
    assert [line.wire() for line in c.lines] == [
        "[LOG] abcdefabcd (truncated due to length)", "[LOG] abcdefabcd (truncated due to "
        "length)", "[LOG] abcdeftail"]
    d = Capture(LogLimits(line_bytes=10))
    print("x" * 25, file=_Into(d))  # one overlong print: one cut line, no empty one after
    assert [line.wire() for line in d.lines] == ["[LOG] xxxxxxxxxx (truncated due to length)"]


class _Into:
    """A stream writing into a capture, as the routed stdout does."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture

    def write(self, text: str) -> int:
        self.capture.write("LOG", text)
        return len(text)


def test_root_logging_is_captured_at_every_level_and_not_printed(
        capture: Capture, caplog: pytest.LogCaptureFixture) -> None:
    logging.getLogger().setLevel(logging.WARNING)
    logging.debug("debug %d", 1)
    logging.info("info")
    logging.warning("warn")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.exception("failed")
    capture.close()
    assert messages(capture)[:3] == [("DEBUG", "debug 1"), ("INFO", "info"), ("WARN", "warn")]
    level, text = messages(capture)[3]
    assert level == "ERROR" and text.startswith("failed\nTraceback") and "ValueError: boom" in text
    assert caplog.records == []  # routed to the execution, not to the server's log


def test_app_loggers_are_captured_and_otherwise_reach_the_root_handlers(
        caplog: pytest.LogCaptureFixture) -> None:
    route_app_logs("_test_app_pkg")
    log = logging.getLogger("_test_app_pkg.functions.notes")
    c = Capture(LogLimits())
    token = CAPTURE.set(c)
    try:
        log.debug("inside")
    finally:
        c.close()
        CAPTURE.reset(token)
    assert messages(c) == [("DEBUG", "inside")]
    with caplog.at_level(logging.INFO):
        log.info("outside")
        log.debug("below the root level")
    assert [r.getMessage() for r in caplog.records] == ["outside"]


def test_other_loggers_are_left_to_the_server_log(
        capture: Capture, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        logging.getLogger("some.library").warning("library says")
    capture.close()
    assert messages(capture) == []
    assert [r.getMessage() for r in caplog.records] == ["library says"]


async def test_concurrent_executions_never_mix_lines() -> None:
    route_streams()

    async def execution(name: str) -> Capture:
        c = Capture(LogLimits())
        CAPTURE.set(c)  # each task has its own context
        for i in range(50):
            print(f"{name} {i}")
            await asyncio.sleep(0)
        await asyncio.to_thread(print, f"{name} from a thread")
        c.close()
        return c

    a, b = await asyncio.gather(execution("a"), execution("b"))
    assert [m for _, m in messages(a)] == [f"a {i}" for i in range(50)] + ["a from a thread"]
    assert [m for _, m in messages(b)] == [f"b {i}" for i in range(50)] + ["b from a thread"]


def test_streams_are_wrapped_again_after_something_replaced_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    route_streams()
    original = real_stdout()
    import io
    replacement = io.StringIO()
    monkeypatch.setattr(sys, "stdout", replacement)
    route_streams()
    assert real_stdout() is replacement and sys.stdout is not replacement
    c = Capture(LogLimits())
    token = CAPTURE.set(c)
    try:
        print("captured")
    finally:
        CAPTURE.reset(token)
    print("real")
    c.close()
    assert messages(c) == [("LOG", "captured")] and replacement.getvalue() == "real\n"
    assert original is not replacement
