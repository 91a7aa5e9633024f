"""Log lines: Convex's wire strings, the structured form, cutting on UTF-8 boundaries."""

from __future__ import annotations

import logging

import pytest

from reactive_store.observe.lines import (
    LogLimits,
    LogLine,
    cut,
    level_of,
    overflow_notice,
    parse_wire,
)


def test_wire_string_is_what_the_npm_client_parses() -> None:
    assert LogLine("LOG", "hello 42", 1.0).wire() == "[LOG] hello 42"
    assert LogLine("WARN", "", 1.0).wire() == "[WARN] "
    assert LogLine("INFO", "abc", 1.0, truncated=True).wire() == \
        "[INFO] abc (truncated due to length)"
    # The npm client's logForFunction reads the level between the first '[' and '] '.
    assert parse_wire("[ERROR] x] y") == ("ERROR", "x] y")
    assert parse_wire("no brackets") == ("LOG", "no brackets")


def test_structured_form_is_convex_log_line_json() -> None:
    line = LogLine("DEBUG", "m", 1234.9, truncated=True)
    assert line.to_json() == {"messages": ["m"], "level": "DEBUG", "timestamp": 1234,
                              "isTruncated": True}


def test_cut_keeps_whole_characters_within_the_byte_limit() -> None:
    assert cut("short", 10) == ("short", False)
    assert cut("abcdef", 6) == ("abcdef", False)
    assert cut("abcdefg", 6) == ("abcdef", True)
    # "é" is two bytes: a cut in the middle of it drops the whole character.
    text, truncated = cut("aé" * 10, 5)
    assert (text, truncated) == ("aéa", True) and len(text.encode()) == 4
    emoji, truncated = cut("😀😀", 5)
    assert (emoji, truncated) == ("😀", True)


def test_levels_map_from_logging() -> None:
    assert [level_of(n) for n in (logging.DEBUG, logging.INFO, logging.WARNING,
                                  logging.ERROR, logging.CRITICAL, 5)] == \
        ["DEBUG", "INFO", "WARN", "ERROR", "ERROR", "DEBUG"]


def test_overflow_notice_is_convex_text() -> None:
    notice = overflow_notice(LogLimits(), 5.0)
    assert notice.wire() == "[ERROR] Log overflow (maximum 256). Remaining log lines omitted."


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        LogLimits(lines=0)
    with pytest.raises(ValueError, match="positive"):
        LogLimits(line_bytes=0)
